package main

// tcmalloc serves every malloc of the process, libtorch's CPU tensors
// included: glibc's malloc maps large activations with mmap and unmaps them
// on free, so every batch faults its memory in again (a third of all CPU
// time, BENCHMARKS.md). Linking it here, ahead of libc, puts its malloc
// first in the lookup order; the Makefile installs Debian's
// libtcmalloc-minimal4. torchbind.Allocator tells which malloc is in use.

// #cgo LDFLAGS: -Wl,--no-as-needed -l:libtcmalloc_minimal.so.4 -Wl,--as-needed
import "C"
