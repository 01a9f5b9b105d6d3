package checkpoint

import (
	"strings"
	"testing"
)

// Hand-written pickles (opcodes as in Python's pickletools) that aim at the
// checkpoint allowlist and tensor rebuilding; safepickle tests the rest.
func TestUnpickleRefusesGlobalsAndMalformedTensors(t *testing.T) {
	for _, tc := range []struct{ name, pickle, want string }{
		{"GLOBAL", "cos\nsystem\n(S'true'\ntR.", "refusing global os.system"},
		{"torch outside the allowlist", "ctorch\nload\n.", "refusing global torch.load"},
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
