package checkpoint

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/types"

	"github.com/smoothadv/smoothadv/smoothadv/internal/safepickle"
)

// storage is one torch storage: the flat array that tensors are views of.
type storage struct {
	dtype DType
	numel int64
	data  []byte // nil until read from the file
	// In the legacy format a storage may itself be a window onto another;
	// base is then that root storage and baseOffset counts elements.
	base       *storage
	baseOffset int64
}

func (s *storage) bytes() ([]byte, error) {
	if s.base == nil {
		if s.data == nil {
			return nil, errors.New("storage data missing")
		}
		return s.data, nil
	}
	data, err := s.base.bytes()
	if err != nil {
		return nil, err
	}
	es := int64(s.dtype.Size())
	return data[s.baseOffset*es : (s.baseOffset+s.numel)*es], nil
}

// nbytes is the storage's size in bytes. Storages larger than limit, the
// size of the file that must hold them, are refused, which also keeps the
// product from overflowing.
func (s *storage) nbytes(limit int64) (int64, error) {
	es := int64(s.dtype.Size())
	if s.numel > limit/es {
		return 0, fmt.Errorf("%d elements do not fit in a file of %d bytes", s.numel, limit)
	}
	return s.numel * es, nil
}

// storageSet collects the storages a pickle refers to by persistent id.
type storageSet struct {
	byKey map[string]*storage
	roots []string // keys of root storages, in order of first reference
}

func newStorageSet() *storageSet {
	return &storageSet{byKey: map[string]*storage{}}
}

// storageID checks a persistent id's kind and length: ('storage', class,
// key, location, numel) in the zip format, plus view metadata in the legacy
// one.
func storageID(id any, n int) (*types.Tuple, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return nil, fmt.Errorf("persistent id is a %T, not a tuple", id)
	}
	switch kind := t.Get(0); kind {
	case "storage":
	case "module":
		return nil, errors.New("file pickles a whole nn.Module class; only state dicts are supported")
	default:
		return nil, fmt.Errorf("unknown persistent id kind %v", kind)
	}
	if t.Len() != n {
		return nil, fmt.Errorf("storage id has %d fields, want %d", t.Len(), n)
	}
	return t, nil
}

// root returns the root storage an id names, creating it on first use. The
// location field (the device it was saved from) does not change the bytes.
func (s *storageSet) root(t *types.Tuple) (*storage, error) {
	cls, ok := t.Get(1).(storageClass)
	if !ok {
		return nil, fmt.Errorf("storage class is a %T", t.Get(1))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, fmt.Errorf("storage key is a %T", t.Get(2))
	}
	numel, err := toInt(t.Get(4))
	if err != nil || numel < 0 {
		return nil, fmt.Errorf("storage %s: bad element count %v", key, t.Get(4))
	}
	if st, ok := s.byKey[key]; ok {
		if st.base != nil || st.dtype != cls.dtype || st.numel != numel {
			return nil, fmt.Errorf("storage %s is declared twice, differently", key)
		}
		return st, nil
	}
	st := &storage{dtype: cls.dtype, numel: numel}
	s.byKey[key] = st
	s.roots = append(s.roots, key)
	return st, nil
}

func (s *storageSet) zipLoad(id any) (any, error) {
	t, err := storageID(id, 5)
	if err != nil {
		return nil, err
	}
	return s.root(t)
}

func (s *storageSet) legacyLoad(id any) (any, error) {
	t, err := storageID(id, 6)
	if err != nil {
		return nil, err
	}
	root, err := s.root(t)
	if err != nil {
		return nil, err
	}
	if t.Get(5) == nil {
		return root, nil
	}
	// View metadata (view_key, offset, numel): files from before PyTorch
	// 1.0 could save storages that were slices of others.
	vm, ok := t.Get(5).(*types.Tuple)
	if !ok || vm.Len() != 3 {
		return nil, fmt.Errorf("storage view metadata %v is not a 3-tuple", t.Get(5))
	}
	key, ok := vm.Get(0).(string)
	offset, errOff := toInt(vm.Get(1))
	numel, errLen := toInt(vm.Get(2))
	if !ok || errOff != nil || errLen != nil || offset < 0 || numel < 0 || numel > root.numel-offset {
		return nil, fmt.Errorf("bad storage view %v of a storage of %d elements", *vm, root.numel)
	}
	if v, ok := s.byKey[key]; ok {
		if v.base != root || v.baseOffset != offset || v.numel != numel {
			return nil, fmt.Errorf("storage view %s is declared twice, differently", key)
		}
		return v, nil
	}
	v := &storage{dtype: root.dtype, numel: numel, base: root, baseOffset: offset}
	s.byKey[key] = v
	return v, nil
}

// readZip reads the zip format (PyTorch >= 1.6): <dir>/data.pkl holds the
// pickle and <dir>/data/<key> the raw bytes of each storage, where <dir>
// is whatever the archive was named when it was written.
func readZip(r io.ReaderAt, size int64) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("corrupt zip archive: %w", err)
	}
	records := map[string]*zip.File{}
	var dirs []string
	for _, f := range zr.File {
		records[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) != 1 {
		return nil, fmt.Errorf("zip archive has %d top-level data.pkl records, want 1: not a torch.save checkpoint", len(dirs))
	}
	dir := dirs[0]
	if records[dir+"constants.pkl"] != nil {
		return nil, errors.New("a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
	}
	if bo := records[dir+"byteorder"]; bo != nil {
		if err := checkByteOrder(bo); err != nil {
			return nil, err
		}
	}
	pkl, err := readZipPickle(records[dir+"data.pkl"])
	if err != nil {
		return nil, err
	}
	set := newStorageSet()
	root, err := unpickle(pkl, set.zipLoad)
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	for _, key := range set.roots {
		st := set.byKey[key]
		n, err := st.nbytes(size)
		if err == nil {
			st.data, err = readRecord(records[dir+"data/"+key], n)
		}
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", key, err)
		}
	}
	return root, nil
}

// checkByteOrder reads the byteorder record newer PyTorch writes.
func checkByteOrder(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("byteorder: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16))
	if err != nil {
		return fmt.Errorf("byteorder: %w", err)
	}
	if string(b) != "little" {
		return fmt.Errorf("byte order %q: only little-endian checkpoints are supported", b)
	}
	return nil
}

func readZipPickle(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	var pkl bytes.Buffer
	err = safepickle.Scan(&pkl, br)
	if err == nil {
		// Reading to the end makes archive/zip verify the CRC-32.
		_, err = io.Copy(io.Discard, br)
	}
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	return pkl.Bytes(), nil
}

// readRecord reads a storage record of n bytes, n already bounded by the
// archive's size. torch.save stores records uncompressed; refusing others
// keeps a small compressed record from inflating without limit.
func readRecord(f *zip.File, n int64) ([]byte, error) {
	if f == nil {
		return nil, errors.New("record missing from the archive")
	}
	if f.Method != zip.Store {
		return nil, fmt.Errorf("record %s is compressed; torch.save stores records uncompressed", f.Name)
	}
	if f.UncompressedSize64 != uint64(n) || f.CompressedSize64 != uint64(n) {
		return nil, fmt.Errorf("record %s holds %d bytes, want %d", f.Name, f.UncompressedSize64, n)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data := make([]byte, n)
	if err := readFull(rc, data); err != nil {
		return nil, err
	}
	// Reading to the end makes archive/zip verify the CRC-32.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, err
	}
	return data, nil
}

// magicNumber opens every legacy torch.save file (torch.serialization's
// MAGIC_NUMBER), followed by legacyProtocol.
var magicNumber, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const legacyProtocol = 1001

// readLegacy reads torch's legacy format (the default before PyTorch 1.6):
// five pickles (magic number, protocol version, system info, the object,
// the sorted storage keys), then for each key an int64 element count and
// the storage's raw bytes.
func readLegacy(r io.ReaderAt, size int64) (any, error) {
	br := bufio.NewReader(io.NewSectionReader(r, 0, size))
	next := func(what string, persistentLoad func(any) (any, error)) (any, error) {
		var pkl bytes.Buffer
		err := safepickle.Scan(&pkl, br)
		if err == nil {
			var v any
			if v, err = unpickle(pkl.Bytes(), persistentLoad); err == nil {
				return v, nil
			}
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	magic, err := next("magic number", nil)
	if m, ok := magic.(*big.Int); err != nil || !ok || m.Cmp(magicNumber) != 0 {
		if err == nil {
			err = errors.New("wrong magic number")
		}
		return nil, fmt.Errorf("not a PyTorch checkpoint (neither a zip archive nor the legacy format): %w", err)
	}
	proto, err := next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if p, ok := proto.(int); !ok || p != legacyProtocol {
		return nil, fmt.Errorf("legacy protocol version %v, want %d", proto, legacyProtocol)
	}
	info, err := next("system info", nil)
	if err != nil {
		return nil, err
	}
	if err := checkSysInfo(info); err != nil {
		return nil, err
	}
	set := newStorageSet()
	root, err := next("checkpoint pickle", set.legacyLoad)
	if err != nil {
		return nil, err
	}
	keysV, err := next("storage keys", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysV.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage keys are a %T, not a list", keysV)
	}
	for _, k := range *keys {
		if err := readLegacyStorage(br, set, k, size); err != nil {
			return nil, err
		}
	}
	for _, key := range set.roots {
		if set.byKey[key].data == nil {
			return nil, fmt.Errorf("storage %s has no data in the file", key)
		}
	}
	return root, nil
}

// checkSysInfo refuses big-endian files: storages are raw native bytes.
func checkSysInfo(info any) error {
	its, err := items(info)
	if err != nil {
		return fmt.Errorf("system info: %w", err)
	}
	for _, it := range its {
		if it.key == "little_endian" && it.value != true {
			return errors.New("checkpoint was written on a big-endian machine; not supported")
		}
	}
	return nil
}

func readLegacyStorage(br *bufio.Reader, set *storageSet, k any, size int64) error {
	key, ok := k.(string)
	st := set.byKey[key]
	if !ok || st == nil || st.base != nil || st.data != nil {
		return fmt.Errorf("storage key %v does not name a pending storage", k)
	}
	var head [8]byte
	if err := readFull(br, head[:]); err != nil {
		return fmt.Errorf("storage %s: %w", key, err)
	}
	numel := int64(binary.LittleEndian.Uint64(head[:]))
	if numel != st.numel {
		return fmt.Errorf("storage %s: file holds %d elements, pickle says %d", key, numel, st.numel)
	}
	n, err := st.nbytes(size)
	if err != nil {
		return fmt.Errorf("storage %s: %w", key, err)
	}
	st.data = make([]byte, n)
	if err := readFull(br, st.data); err != nil {
		return fmt.Errorf("storage %s: %w", key, err)
	}
	return nil
}

// readFull reads bytes the file promises: running out, even before the
// first byte, is truncation.
func readFull(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
