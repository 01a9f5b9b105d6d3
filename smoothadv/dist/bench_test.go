package dist

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// peerEnv makes the test binary the second process of
// BenchmarkAllReduceResNet110: it all-reduces as many times as the value says.
const peerEnv = "SMOOTHADV_ALLREDUCE_PEER"

func TestMain(m *testing.M) {
	if n := os.Getenv(peerEnv); n != "" {
		times, err := strconv.Atoi(n)
		if err == nil {
			err = allReduceGradients(times, nil)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// allReduceGradients joins the group its environment describes and averages
// gradient-shaped tensors of cifar_resnet110's parameters times times, as a
// training step does; b, when set, times the all-reduces alone.
func allReduceGradients(times int, b *testing.B) error {
	g, err := Launched()
	if err != nil || g == nil {
		return fmt.Errorf("not launched as a group (%v)", err)
	}
	if err := torchbind.UseCores(g.LocalWorld); err != nil { // as training sets them
		return err
	}
	err = g.Connect("cpu")
	if err == nil {
		err = func() error {
			m, err := models.New("cifar_resnet110", 1, models.Options{Dir: testenv.ModelsDir()})
			if err != nil {
				return err
			}
			defer m.Close()
			params, err := m.Parameters()
			if err != nil {
				return err
			}
			defer torchbind.CloseAll(params)
			s := torchbind.NewScope()
			defer s.Close()
			grads := make([]*torchbind.Tensor, len(params))
			for i, p := range params {
				grads[i] = s.OnesLike(p.T)
			}
			if err := s.Err(); err != nil {
				return err
			}
			if err := g.Barrier(); err != nil {
				return err
			}
			if b != nil {
				b.ResetTimer()
			}
			for range times {
				if err := g.AllReduce(grads, true); err != nil {
					return err
				}
			}
			return nil
		}()
	}
	return g.Close(err)
}

// BenchmarkAllReduceResNet110 times the gradient all-reduce of a training
// step of cifar_resnet110 (1.7M parameters, 6.9 MB, in buckets of
// BucketBytes) between two processes on this machine over Gloo.
func BenchmarkAllReduceResNet110(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	env := []string{"WORLD_SIZE=2", "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)}
	peer := exec.Command(os.Args[0], "-test.run=^$")
	peer.Env = append(os.Environ(), append(env, "RANK=1", "LOCAL_RANK=1", peerEnv+"="+strconv.Itoa(b.N))...)
	peer.Stderr = os.Stderr
	if err := peer.Start(); err != nil {
		b.Fatal(err)
	}
	for _, kv := range append(env, "RANK=0", "LOCAL_RANK=0") {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	began := time.Now()
	if err := allReduceGradients(b.N, b); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if err := peer.Wait(); err != nil {
		b.Fatalf("the peer: %v (after %v)", err, time.Since(began))
	}
}
