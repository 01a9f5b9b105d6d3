package nppickle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// operand says what follows an opcode: fixed bytes, a little-endian length of lenBytes and that
// many bytes, or newline-terminated lines. FRAME's length counts the opcodes that follow, which
// are scanned rather than skipped.
type operand struct {
	fixed, lenBytes, lines int
	frame                  bool
}

// operands lists every opcode of pickle protocols 0 to 5 (Python's pickletools).
var operands = map[byte]operand{
	// No operand.
	'(': {}, '.': {}, '0': {}, '1': {}, '2': {}, 'N': {}, 'Q': {}, 'R': {}, 'a': {}, 'b': {},
	'd': {}, '}': {}, 'e': {}, 'l': {}, ']': {}, 'o': {}, 's': {}, 't': {}, ')': {}, 'u': {},
	0x81: {}, 0x85: {}, 0x86: {}, 0x87: {}, 0x88: {}, 0x89: {}, 0x8f: {}, 0x90: {}, 0x91: {},
	0x92: {}, 0x93: {}, 0x94: {}, 0x97: {}, 0x98: {},
	// Fixed size.
	'J': {fixed: 4}, 'K': {fixed: 1}, 'M': {fixed: 2}, 'h': {fixed: 1}, 'j': {fixed: 4},
	'q': {fixed: 1}, 'r': {fixed: 4}, 'G': {fixed: 8}, 0x80: {fixed: 1}, 0x82: {fixed: 1},
	0x83: {fixed: 2}, 0x84: {fixed: 4},
	// Counted.
	'T': {lenBytes: 4}, 'U': {lenBytes: 1}, 'X': {lenBytes: 4}, 'B': {lenBytes: 4},
	'C': {lenBytes: 1}, 0x8a: {lenBytes: 1}, 0x8b: {lenBytes: 4}, 0x8c: {lenBytes: 1},
	0x8d: {lenBytes: 8}, 0x8e: {lenBytes: 8}, 0x96: {lenBytes: 8},
	0x95: {lenBytes: 8, frame: true},
	// Text lines.
	'F': {lines: 1}, 'I': {lines: 1}, 'L': {lines: 1}, 'P': {lines: 1}, 'S': {lines: 1},
	'V': {lines: 1}, 'g': {lines: 1}, 'p': {lines: 1}, 'c': {lines: 2}, 'i': {lines: 2},
}

// checkLengths walks the opcodes of a pickle of size bytes up to STOP and fails if one claims
// more bytes than are left. gopickle allocates a claimed length before reading it, so one corrupt
// length could otherwise ask for terabytes and kill the process.
func checkLengths(r *bufio.Reader, size int64) error {
	var pos int64
	for {
		op, err := r.ReadByte()
		if err != nil {
			return truncated(err)
		}
		pos++
		a, ok := operands[op]
		if !ok {
			return fmt.Errorf("unknown opcode 0x%02x at offset %d", op, pos-1)
		}
		if op == '.' {
			return nil
		}
		n := uint64(a.fixed)
		if a.lenBytes > 0 {
			var b [8]byte
			if _, err := io.ReadFull(r, b[:a.lenBytes]); err != nil {
				return truncated(err)
			}
			pos += int64(a.lenBytes)
			n = binary.LittleEndian.Uint64(b[:])
		}
		if n > math.MaxInt64 || int64(n) > size-pos {
			return fmt.Errorf("opcode 0x%02x at offset %d claims %d bytes, only %d are left", op, pos-1, n, size-pos)
		}
		if !a.frame {
			if _, err := r.Discard(int(n)); err != nil {
				return truncated(err)
			}
			pos += int64(n)
		}
		for range a.lines {
			k, err := skipLine(r)
			if err != nil {
				return truncated(err)
			}
			pos += k
		}
	}
}

// skipLine reads past the next newline without holding the line, and says how many bytes it read.
func skipLine(r *bufio.Reader) (int64, error) {
	var n int64
	for {
		b, err := r.ReadSlice('\n')
		n += int64(len(b))
		if !errors.Is(err, bufio.ErrBufferFull) {
			return n, err
		}
	}
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("pickle ends before its STOP opcode: %w", io.ErrUnexpectedEOF)
	}
	return err
}
