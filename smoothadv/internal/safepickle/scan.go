// Package safepickle reads untrusted Python pickles with gopickle so that a
// corrupt or hostile file can only fail to load: Scan checks that every
// length a pickle claims is backed by real bytes before gopickle allocates
// it, and Unpickle resolves only allowlisted globals and turns gopickle's
// panics on malformed input into errors.
package safepickle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// How an opcode's argument is laid out in the stream.
type argKind uint8

const (
	argUnknown argKind = iota // not an opcode
	argNone
	argFixed // n bytes
	argLines // n newline-terminated lines
	argSized // an n-byte little-endian length, then that many bytes
	argFrame // an 8-byte frame length; the frame's opcodes follow
	argStop  // STOP: the end of the pickle
)

type opArg struct {
	kind argKind
	n    int
}

// opArgs describes every opcode of pickle protocols 0 to 5 (see Python's
// pickletools), indexed by opcode byte.
var opArgs = func() (t [256]opArg) {
	set := func(kind argKind, n int, ops string) {
		for i := range len(ops) {
			t[ops[i]] = opArg{kind, n}
		}
	}
	set(argNone, 0, "()012NQRabde}l]ostu\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98")
	set(argFixed, 1, "Khq\x80\x82")
	set(argFixed, 2, "M\x83")
	set(argFixed, 4, "Jjr\x84")
	set(argFixed, 8, "G")
	set(argLines, 1, "FILSVgpP")
	set(argLines, 2, "ci")
	set(argSized, 1, "UC\x8a\x8c")
	set(argSized, 4, "TBX\x8b")
	set(argSized, 8, "\x8d\x8e\x96")
	set(argFrame, 8, "\x95")
	set(argStop, 0, ".")
	return t
}()

// Scan reads one pickle from r, up to and including its STOP opcode, and
// writes every byte it reads to w: a buffer to keep the pickle, io.Discard
// to only check it. It walks the opcodes only to find where the pickle ends
// and to check that every length field is backed by bytes that are really
// there: gopickle allocates whatever a length field says before reading, so
// handing it only scanned pickles keeps a corrupt file from exhausting
// memory. Bytes pass through r's buffer as they arrive, so a huge length
// that the input cannot back fails at its end without a huge allocation.
func Scan(w io.Writer, r *bufio.Reader) error {
	s := scanner{r: r, w: w}
	var frameEnd int64
	for {
		at := s.pos
		b, err := r.Peek(1)
		if err != nil {
			return fmt.Errorf("pickle ends before its STOP opcode: %w", noEOF(err))
		}
		op := b[0]
		arg := opArgs[op]
		if arg.kind == argUnknown {
			return fmt.Errorf("unknown pickle opcode 0x%02x at byte %d", op, at)
		}
		if err := s.copy(1); err != nil {
			return err
		}
		switch arg.kind {
		case argStop:
			if frameEnd > s.pos {
				return errors.New("pickle frame ends after the pickle")
			}
			return nil
		case argFixed:
			err = s.copy(int64(arg.n))
		case argLines:
			for i := 0; i < arg.n && err == nil; i++ {
				err = s.line()
			}
		case argSized, argFrame:
			var n uint64
			if n, err = s.length(arg.n); err != nil {
				break
			}
			switch {
			case n > math.MaxInt64, arg.kind == argFrame && int64(n) > math.MaxInt64-s.pos:
				err = errors.New("out of range")
			case arg.kind == argSized:
				err = s.copy(int64(n))
			default:
				frameEnd = max(frameEnd, s.pos+int64(n))
			}
			if err != nil {
				return fmt.Errorf("pickle opcode 0x%02x at byte %d claims %d bytes: %w", op, at, n, noEOF(err))
			}
		}
		if err != nil {
			return fmt.Errorf("pickle opcode 0x%02x at byte %d: %w", op, at, noEOF(err))
		}
	}
}

// scanner passes bytes from r to w, counting them.
type scanner struct {
	r   *bufio.Reader
	w   io.Writer
	pos int64
}

// copy passes the next n bytes through r's own buffer, so it allocates
// nothing however large n is.
func (s *scanner) copy(n int64) error {
	for n > 0 {
		b, err := s.r.Peek(int(min(n, int64(s.r.Size()))))
		k, werr := s.w.Write(b)
		s.r.Discard(k)
		s.pos += int64(k)
		n -= int64(k)
		if werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// length passes on an n-byte little-endian length field and returns it.
func (s *scanner) length(n int) (uint64, error) {
	b, err := s.r.Peek(n)
	if err != nil {
		return 0, err
	}
	var v [8]byte
	copy(v[:], b)
	return binary.LittleEndian.Uint64(v[:]), s.copy(int64(n))
}

// line passes on the rest of a newline-terminated line, however long.
func (s *scanner) line() error {
	for {
		b, err := s.r.ReadSlice('\n')
		k, werr := s.w.Write(b)
		s.pos += int64(k)
		if werr != nil {
			return werr
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// noEOF reports a clean end of input inside a pickle as truncation.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
