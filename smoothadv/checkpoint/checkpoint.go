// Package checkpoint reads the reference's checkpoint.pth.tar files, written
// by torch.save in the legacy format (2019 files) or the zip format, without
// Python and without running anything the file asks for: only the globals a
// checkpoint needs are accepted (see globals), so a file crafted to call
// os.system or eval is refused. It also maps a state dict onto a model's
// expected parameters (Match).
package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Checkpoint is what the reference saves every epoch:
// {'epoch', 'arch', 'state_dict', 'optimizer'}, or MACER's
// {'net': state_dict, 'epoch'}.
type Checkpoint struct {
	Epoch     int
	Arch      string // "" in MACER's layout
	StateDict []Entry
	// Net says the file has MACER's layout: the state dict under 'net', no
	// 'arch', a net trained without an input layer.
	Net bool
	// Optimizer is nil when the file has no optimizer state or one that
	// is not SGD's; the latter is then kept in Extra["optimizer"].
	Optimizer *Optimizer
	// Extra holds the file's other top-level entries as plain values
	// (nil, bool, int64, float64, string, []byte, []any, map[any]any,
	// *Tensor).
	Extra map[string]any
}

// Entry is one named tensor of a state dict.
type Entry struct {
	Name   string
	Tensor *Tensor
}

// Load reads the checkpoint file at path.
func Load(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	c, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	return c, nil
}

// Read reads a checkpoint of size bytes from r, in either format.
func Read(r io.ReaderAt, size int64) (*Checkpoint, error) {
	if size == 0 {
		return nil, errors.New("empty file")
	}
	// A failed read leaves n short; the legacy reader then reports it.
	var head [4]byte
	n, _ := r.ReadAt(head[:], 0)
	read := readLegacy
	if n == len(head) && string(head[:]) == "PK\x03\x04" {
		read = readZip
	}
	root, err := read(r, size)
	if err != nil {
		return nil, err
	}
	d := decoder{budget: size}
	return d.checkpoint(root)
}

func (d *decoder) checkpoint(root any) (*Checkpoint, error) {
	its, err := items(root)
	if err != nil {
		return nil, fmt.Errorf("not a training checkpoint: %w", err)
	}
	c := &Checkpoint{Extra: map[string]any{}}
	seen := map[string]bool{}
	for _, it := range its {
		key, ok := it.key.(string)
		if !ok {
			return nil, fmt.Errorf("top-level key %v is not a string", it.key)
		}
		seen[key] = true
		switch key {
		case "epoch":
			var n int64
			n, err = toInt(it.value)
			c.Epoch = int(n)
		case "arch":
			if c.Arch, ok = it.value.(string); !ok {
				err = fmt.Errorf("%s is not a str", typeName(it.value))
			}
		case "state_dict", "net":
			c.StateDict, err = d.stateDict(it.value)
			c.Net = key == "net"
		case "optimizer":
			c.Optimizer, err = d.optimizer(it.value)
			if err == nil && c.Optimizer == nil {
				c.Extra[key], err = d.plain(it.value, 0)
			}
		default:
			c.Extra[key], err = d.plain(it.value, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if seen["state_dict"] && seen["net"] {
		return nil, errors.New("not a training checkpoint: both a \"state_dict\" and a \"net\" entry")
	}
	want := []string{"epoch", "arch", "state_dict"}
	if c.Net {
		want = []string{"epoch", "net"}
	}
	for _, k := range want {
		if !seen[k] {
			return nil, fmt.Errorf("not a training checkpoint: no %q entry", k)
		}
	}
	return c, nil
}

func (d *decoder) stateDict(v any) ([]Entry, error) {
	its, err := items(v)
	if err != nil {
		return nil, err
	}
	sd := make([]Entry, len(its))
	for i, it := range its {
		name, ok := it.key.(string)
		if !ok {
			return nil, fmt.Errorf("key %v is not a string", it.key)
		}
		t, err := d.tensor(it.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		sd[i] = Entry{Name: name, Tensor: t}
	}
	return sd, nil
}
