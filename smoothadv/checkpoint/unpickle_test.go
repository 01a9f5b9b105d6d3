package checkpoint

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// Hand-written pickles (opcodes as in Python's pickletools) that aim at the
// reader's defences: each must fail with an error naming the problem.
func TestReadPickleRefusesBadStreams(t *testing.T) {
	for _, tc := range []struct{ name, pickle, want string }{
		{"huge BINBYTES8", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", "unexpected EOF"},
		{"length past int64", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff.", "out of range"},
		{"huge BINUNICODE", "X\xff\xff\xff\xff.", "unexpected EOF"},
		{"unknown opcode", "\x80\x02\xff.", "unknown pickle opcode 0xff"},
		{"frame past the end", "\x80\x04\x95\x00\x01\x00\x00\x00\x00\x00\x00N.", "frame ends after"},
		{"frame length past int64", "\x80\x04\x95\xfe\xff\xff\xff\xff\xff\xff\x7fN.", "out of range"},
		{"no STOP", "\x80\x02N", "unexpected EOF"},
		{"unterminated line", "I12", "unexpected EOF"},
	} {
		_, err := readPickle(bufio.NewReader(strings.NewReader(tc.pickle)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestReadPickleStopsAtSTOP(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("\x80\x02X\x02\x00\x00\x00a.K\x01.rest"))
	p, err := readPickle(r)
	if err != nil || string(p) != "\x80\x02X\x02\x00\x00\x00a.K\x01." {
		t.Fatalf("got %q, %v", p, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Errorf("left %q unread, want %q", rest, "rest")
	}
}

func TestUnpickleRefusesGlobalsAndMalformedPickles(t *testing.T) {
	for _, tc := range []struct{ name, pickle, want string }{
		{"GLOBAL", "cos\nsystem\n(S'true'\ntR.", "refusing global os.system"},
		{"STACK_GLOBAL", "\x80\x04\x8c\x08builtins\x8c\x04exec\x93.", "refusing global builtins.exec"},
		{"INST", "(S'x'\nibuiltins\ngetattr\n.", "refusing global builtins.getattr"},
		{"torch outside the allowlist", "ctorch\nload\n.", "refusing global torch.load"},
		{"odd DICT", "(K\x01d.", "malformed pickle"},
		{"persistent id without storages", "NQ.", "persistent ID"},
		{"tensor without a storage", "ctorch._utils\n_rebuild_tensor_v2\n(NK\x00))\x89NtR.", "storage is a"},
	} {
		_, err := unpickle([]byte(tc.pickle), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestPlainRefusesCycles(t *testing.T) {
	v, err := unpickle([]byte("]q\x00h\x00a."), nil) // a list holding itself
	if err != nil {
		t.Fatal(err)
	}
	d := decoder{}
	if _, err := d.plain(v, 0); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("error %v, want one about nesting", err)
	}
}
