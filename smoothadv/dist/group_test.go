package dist

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/torchbind"
)

// ranks runs f as each rank of a Gloo group of world goroutines, connected
// through a store on a free localhost port, and returns what each rank's
// Close returned for f's outcome.
func ranks(t *testing.T, world int, f func(g *Group) error) []error {
	t.Helper()
	if !slices.Contains(torchbind.DistBackends(), "gloo") {
		t.Skipf("the shim has no Gloo backend (built: %v): install libgloo-dev and rebuild (make)", torchbind.DistBackends())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := New(Env{Launcher: "test", Rank: r, World: world, LocalWorld: 1, MasterAddr: "127.0.0.1", MasterPort: port}, 20*time.Second)
			err := g.Connect("cpu")
			if err == nil {
				err = f(g)
			}
			out[r] = g.Close(err)
		}()
	}
	wg.Wait()
	return out
}

// sum all-reduces one number.
func sum(g *Group, v float32) error {
	s := torchbind.NewScope()
	defer s.Close()
	x := s.FromFloat32([]float32{v}, "cpu", 1)
	if err := s.Err(); err != nil {
		return err
	}
	return g.AllReduce([]*torchbind.Tensor{x}, false)
}

func TestAFailureStopsEveryRankWithItsMessage(t *testing.T) {
	for _, failing := range []int{0, 2} { // the store's host, and another
		began := time.Now()
		errs := ranks(t, 3, func(g *Group) error {
			if err := sum(g, 1); err != nil {
				return err
			}
			if g.Rank == failing {
				time.Sleep(100 * time.Millisecond) // the others wait in the next all-reduce
				return errors.New("no space left on device")
			}
			return sum(g, 1)
		})
		for r, err := range errs {
			want := "stopped because rank " + string(rune('0'+failing)) + " failed: no space left on device"
			if r == failing {
				want = "rank " + string(rune('0'+failing)) + ": no space left on device"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("rank %d failing: rank %d says %v, want %q", failing, r, err, want)
			}
		}
		if d := time.Since(began); d > 10*time.Second {
			t.Errorf("rank %d failing: the ranks took %v to stop", failing, d)
		}
	}
}

func TestSuccessLeavesQuietly(t *testing.T) {
	for r, err := range ranks(t, 2, func(g *Group) error { return sum(g, float32(g.Rank)) }) {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

func TestAloneIsANilGroup(t *testing.T) {
	var g *Group
	if !g.Leader() {
		t.Error("a process alone does not lead")
	}
	if dev, err := g.Device("cpu"); err != nil || dev != "cpu" {
		t.Errorf("Device(cpu) alone: %q, %v", dev, err)
	}
	want := errors.New("x")
	if err := g.Close(want); err != want {
		t.Errorf("Close alone changed the error to %v", err)
	}
}

// TestRendezvousWithASilentServerTimesOut: a MASTER_PORT that accepts
// connections and never answers ends the rendezvous within a few seconds
// of SMOOTHADV_DIST_TIMEOUT, with a message naming the store.
func TestRendezvousWithASilentServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	g := New(Env{Launcher: "torchrun", Rank: 1, World: 2, LocalWorld: 2, MasterAddr: "127.0.0.1", MasterPort: port}, 2*time.Second)
	start := time.Now()
	err = g.Connect("cpu")
	took := time.Since(start)
	if err == nil {
		g.Close(nil)
		t.Fatal("joined a group through a silent server")
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("store at 127.0.0.1:%d", port)) {
		t.Errorf("error %q does not name the store", err)
	}
	if took > 2*time.Second+rendezvousSlack+2*time.Second {
		t.Errorf("gave up after %v, with a timeout of 2s", took)
	}
	t.Logf("gave up after %v: %v", took.Round(time.Millisecond), err)
}
