package torchbind

// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// DistBackends lists the c10d backends compiled into the shim: "gloo" where
// Gloo's headers were found, "nccl" with a CUDA libtorch and NCCL's headers.
func DistBackends() []string { return strings.Fields(C.GoString(C.tb_dist_backends())) }

// Store is a c10d TCPStore: the rendezvous of a process group, and a small
// key-value store that its processes share.
type Store struct {
	h C.tb_store
}

// NewStore opens the store at host:port, serving it or connecting to it
// (retrying up to timeout). Each of the world processes checks in, and the
// one that serves waits up to timeout for them all. Keys live under prefix
// unless it is "".
func NewStore(host string, port int, serve bool, world int, prefix string, timeout time.Duration) (*Store, error) {
	ch, cp := C.CString(host), C.CString(prefix)
	defer C.free(unsafe.Pointer(ch))
	defer C.free(unsafe.Pointer(cp))
	var h C.tb_store
	if err := check("store", C.tb_store_new(ch, C.int(port), boolInt(serve), C.int(world), cp, C.int64_t(timeout.Milliseconds()), &h)); err != nil {
		return nil, err
	}
	s := &Store{h: h}
	runtime.SetFinalizer(s, (*Store).Close)
	return s, nil
}

// Close disconnects (and stops serving); safe to call twice.
func (s *Store) Close() {
	if s == nil || s.h == nil {
		return
	}
	C.tb_store_free(s.h)
	s.h = nil
	runtime.SetFinalizer(s, nil)
}

func (s *Store) handle(op string) (C.tb_store, error) {
	if s == nil || s.h == nil {
		return nil, fmt.Errorf("torch: %s: closed store", op)
	}
	return s.h, nil
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	h, err := s.handle("store set")
	if err != nil {
		return err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	cv := C.CBytes(value)
	defer C.free(cv)
	return check("store set", C.tb_store_set(h, ck, (*C.char)(cv), C.int(len(value))))
}

// Get returns the value under key, and false at once when there is none.
func (s *Store) Get(key string) ([]byte, bool, error) {
	h, err := s.handle("store get")
	if err != nil {
		return nil, false, err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v *C.char
	var n, found C.int
	if err := check("store get", C.tb_store_get(h, ck, &v, &n, &found)); err != nil {
		return nil, false, err
	}
	if found == 0 {
		return nil, false, nil
	}
	defer C.free(unsafe.Pointer(v))
	return C.GoBytes(unsafe.Pointer(v), n), true, nil
}

// Add adds delta to the counter under key (0 when unset) and returns its new value.
func (s *Store) Add(key string, delta int64) (int64, error) {
	h, err := s.handle("store add")
	if err != nil {
		return 0, err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.int64_t
	if err := check("store add", C.tb_store_add(h, ck, C.int64_t(delta), &out)); err != nil {
		return 0, err
	}
	return int64(out), nil
}

// ProcessGroup is one process's place in a c10d process group: collectives
// over tensors on every process at once, run by a Gloo (CPU) or NCCL (CUDA)
// backend. A collective blocks until every process has joined it, or fails
// after the group's timeout or when a peer's connection drops.
type ProcessGroup struct {
	h C.tb_group
}

// NewProcessGroup joins the group of world processes that meet through st as
// rank, with backend "gloo" or "nccl"; timeout bounds the joining and each
// collective.
func NewProcessGroup(st *Store, rank, world int, backend string, timeout time.Duration) (*ProcessGroup, error) {
	sh, err := st.handle("process group")
	if err != nil {
		return nil, err
	}
	cb := C.CString(backend)
	defer C.free(unsafe.Pointer(cb))
	var h C.tb_group
	if err := check("process group", C.tb_group_new(sh, C.int(rank), C.int(world), cb, C.int64_t(timeout.Milliseconds()), &h)); err != nil {
		return nil, err
	}
	runtime.KeepAlive(st)
	g := &ProcessGroup{h: h}
	runtime.SetFinalizer(g, (*ProcessGroup).Close)
	return g, nil
}

// Close leaves the group, closing the connections to the peers (whose
// pending collectives then fail); safe to call twice.
func (g *ProcessGroup) Close() {
	if g == nil || g.h == nil {
		return
	}
	C.tb_group_free(g.h)
	g.h = nil
	runtime.SetFinalizer(g, nil)
}

func (g *ProcessGroup) handle(op string) (C.tb_group, error) {
	if g == nil || g.h == nil {
		return nil, fmt.Errorf("torch: %s: closed process group", op)
	}
	return g.h, nil
}

// AllReduce sums ts in place over the group, divided by the number of
// processes when average is set. Runs of tensors of one dtype and device,
// up to bucketBytes each, travel as one message.
func (g *ProcessGroup) AllReduce(ts []*Tensor, average bool, bucketBytes int64) error {
	return g.collective("all_reduce", ts, func(h C.tb_group, arr *C.tb_tensor, n C.int) C.tb_error {
		return C.tb_group_allreduce(h, arr, n, boolInt(average), C.int64_t(bucketBytes))
	})
}

// Broadcast overwrites ts with root's, in buckets as AllReduce.
func (g *ProcessGroup) Broadcast(ts []*Tensor, root int, bucketBytes int64) error {
	return g.collective("broadcast", ts, func(h C.tb_group, arr *C.tb_tensor, n C.int) C.tb_error {
		return C.tb_group_broadcast(h, arr, n, C.int(root), C.int64_t(bucketBytes))
	})
}

// Barrier returns when every process has called it.
func (g *ProcessGroup) Barrier() error {
	h, err := g.handle("barrier")
	if err != nil {
		return err
	}
	return check("barrier", C.tb_group_barrier(h))
}

// collective hands call the tensors' handles, in C memory.
func (g *ProcessGroup) collective(op string, ts []*Tensor, call func(C.tb_group, *C.tb_tensor, C.int) C.tb_error) error {
	h, err := g.handle(op)
	if err != nil {
		return err
	}
	if len(ts) == 0 {
		return nil
	}
	arr := (*[1 << 28]C.tb_tensor)(C.malloc(C.size_t(len(ts)) * C.size_t(unsafe.Sizeof(C.tb_tensor(nil)))))[:len(ts):len(ts)]
	defer C.free(unsafe.Pointer(&arr[0]))
	for i, t := range ts {
		if arr[i], err = t.handle(op); err != nil {
			return err
		}
	}
	err = check(op, call(h, &arr[0], C.int(len(ts))))
	runtime.KeepAlive(ts)
	return err
}
