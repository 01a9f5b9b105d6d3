package safepickle

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// Hand-written pickles (opcodes as in Python's pickletools) that aim at the
// scan's defences: each must fail with an error naming the problem, and
// before anything allocates a claimed length.
var badStreams = []struct{ name, pickle, want string }{
	{"huge BINBYTES8", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", "unexpected EOF"},
	{"BINBYTES8 past the input", "\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00a.", "claims 1099511627776 bytes"},
	{"length past int64", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff.", "out of range"},
	{"huge BINUNICODE", "X\xff\xff\xff\xff.", "unexpected EOF"},
	{"huge BINSTRING", "\x80\x02T\xff\xff\xff\x7fa.", "claims 2147483647 bytes"},
	{"unknown opcode", "\x80\x02\xff.", "unknown pickle opcode 0xff"},
	{"frame past the end", "\x80\x04\x95\x00\x01\x00\x00\x00\x00\x00\x00N.", "frame ends after"},
	{"frame length past int64", "\x80\x04\x95\xfe\xff\xff\xff\xff\xff\xff\x7fN.", "out of range"},
	{"frame length past uint63", "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.", "claims"},
	{"no STOP", "\x80\x02N", "unexpected EOF"},
	{"unterminated line", "I12", "unexpected EOF"},
}

func TestScanRefusesBadStreams(t *testing.T) {
	for _, tc := range badStreams {
		err := Scan(io.Discard, bufio.NewReader(strings.NewReader(tc.pickle)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestScanStopsAtSTOP(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("\x80\x02X\x02\x00\x00\x00a.K\x01.rest"))
	var p bytes.Buffer
	if err := Scan(&p, r); err != nil || p.String() != "\x80\x02X\x02\x00\x00\x00a.K\x01." {
		t.Fatalf("got %q, %v", p.Bytes(), err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Errorf("left %q unread, want %q", rest, "rest")
	}
}

// Lines and payloads longer than the reader's buffer pass through whole.
func TestScanCopiesPastTheBuffer(t *testing.T) {
	long := strings.Repeat("x", 100)
	pickle := "S'" + long + "'\nB\x64\x00\x00\x00" + long + "."
	r := bufio.NewReaderSize(strings.NewReader(pickle), 16)
	var p bytes.Buffer
	if err := Scan(&p, r); err != nil || p.String() != pickle {
		t.Fatalf("got %q, %v", p.Bytes(), err)
	}
}

func TestUnpickleRefusesGlobalsAndMalformedPickles(t *testing.T) {
	globals := map[string]any{"mod.ok": 7}
	for _, tc := range []struct{ name, pickle, want string }{
		{"GLOBAL", "cos\nsystem\n(S'true'\ntR.", "refusing global os.system, which is not allowed"},
		{"STACK_GLOBAL", "\x80\x04\x8c\x08builtins\x8c\x04exec\x93.", "refusing global builtins.exec"},
		{"INST", "(S'x'\nibuiltins\ngetattr\n.", "refusing global builtins.getattr"},
		{"odd DICT", "(K\x01d.", "malformed pickle"},
		{"persistent id without a loader", "NQ.", "persistent ID"},
	} {
		_, err := Unpickle(strings.NewReader(tc.pickle), globals, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
	if v, err := Unpickle(strings.NewReader("cmod\nok\n."), globals, nil); v != 7 || err != nil {
		t.Errorf("allowed global: %v, %v; want 7", v, err)
	}
}

// FuzzScanUnpickle checks that no input crashes the scan or the unpickler,
// and that a scan copies exactly the pickle's bytes.
func FuzzScanUnpickle(f *testing.F) {
	for _, tc := range badStreams {
		f.Add([]byte(tc.pickle))
	}
	// pickle.dumps([1, 'a', b'xy', {'k': 2.5}], protocol=4)
	f.Add([]byte("\x80\x04\x95 \x00\x00\x00\x00\x00\x00\x00]\x94(K\x01\x8c\x01a\x94C\x02xy\x94}\x94\x8c\x01k\x94G@\x04\x00\x00\x00\x00\x00\x00se."))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p bytes.Buffer
		if err := Scan(&p, bufio.NewReader(bytes.NewReader(b))); err != nil {
			return
		}
		if !bytes.HasPrefix(b, p.Bytes()) || p.Bytes()[p.Len()-1] != '.' {
			t.Fatalf("scan copied %q from %q", p.Bytes(), b)
		}
		Unpickle(bytes.NewReader(p.Bytes()), map[string]any{"mod.ok": 7}, nil)
	})
}
