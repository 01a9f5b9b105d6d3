package checkpoint

import (
	"bufio"
	"bytes"
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

// readPickle copies one pickle, up to and including its STOP opcode, out of
// r. It walks the opcodes only to find where the pickle ends and to check
// that every length field is backed by bytes that are really there: gopickle
// allocates whatever a length field says before reading, so handing it only
// verified pickles keeps a corrupt file from exhausting memory.
func readPickle(r *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	var frameEnd int64
	for {
		op, err := r.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		at := buf.Len()
		buf.WriteByte(op)
		arg := opArgs[op]
		switch arg.kind {
		case argUnknown:
			return nil, fmt.Errorf("unknown pickle opcode 0x%02x at byte %d", op, at)
		case argStop:
			if frameEnd > int64(buf.Len()) {
				return nil, fmt.Errorf("pickle frame ends after the pickle")
			}
			return buf.Bytes(), nil
		case argNone:
		case argFixed:
			err = copyN(&buf, r, int64(arg.n))
		case argLines:
			for range arg.n {
				var line []byte
				line, err = r.ReadBytes('\n')
				buf.Write(line)
				if err != nil {
					break
				}
			}
		case argSized, argFrame:
			var n int64
			n, err = readLength(&buf, r, arg.n)
			if err == nil && arg.kind == argSized {
				err = copyN(&buf, r, n)
			}
			if err == nil && arg.kind == argFrame {
				if n > math.MaxInt64-int64(buf.Len()) {
					err = fmt.Errorf("frame length %d out of range", n)
				} else {
					frameEnd = max(frameEnd, int64(buf.Len())+n)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("pickle opcode 0x%02x at byte %d: %w", op, at, noEOF(err))
		}
	}
}

// readLength reads an n-byte little-endian length and copies it to buf.
func readLength(buf *bytes.Buffer, r io.Reader, n int) (int64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return 0, err
	}
	buf.Write(b[:n])
	v := binary.LittleEndian.Uint64(b[:])
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("length %d out of range", v)
	}
	return int64(v), nil
}

// copyN copies n bytes; the buffer grows as bytes arrive, so a huge n that
// the file cannot back fails without a huge allocation.
func copyN(buf *bytes.Buffer, r io.Reader, n int64) error {
	_, err := io.CopyN(buf, r, n)
	return err
}

// noEOF reports a clean end of input inside a pickle as truncation.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
