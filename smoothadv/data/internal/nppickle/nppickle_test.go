package nppickle

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// Pickles written by Python 3.11 and numpy 1.24 (protocol 2, so with _codecs.encode for bytes):
//
//	pickle.dumps({'a': np.array([1, -2, 300], dtype='>i2'), b'b': [4, 5],
//	              'c': np.arange(6, dtype=np.uint8).reshape(2, 3)}, protocol=2)
const dictHex = "80027d7100285801000000617101636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7102636e756d70790a6e6461727261790a71034b00857104635f636f646563730a656e636f64650a7105580100000062710658060000006c6174696e31710786710852710987710a52710b284b014b0385710c636e756d70790a64747970650a710d58020000006932710e898887710f527110284b0358010000003e71114e4e4e4affffffff4affffffff4b007471126289680558080000000001c3bfc3be012c711368078671145271157471166268095d7117284b044b05655801000000637118680268034b00857119680987711a52711b284b014b024b0386711c680d58020000007531711d898887711e52711f284b0358010000007c71204e4e4e4affffffff4affffffff4b007471216289680558060000000001020304057122680786712352712474712562752e"

// pickle.dumps(np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3)), protocol=2)
const fortranHex = "8002636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7100636e756d70790a6e6461727261790a71014b00857102635f636f646563730a656e636f64650a7103580100000062710458060000006c6174696e317105867106527107877108527109284b014b024b0386710a636e756d70790a64747970650a710b58020000007531710c898887710d52710e284b0358010000007c710f4e4e4e4affffffff4affffffff4b0074711062886803580600000000030104020571116805867112527113747114622e"

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodesDictOfArrays(t *testing.T) {
	v, err := Load(mustHex(t, dictHex))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Get(v, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Ints(a); err != nil || !slices.Equal(got, []int{1, -2, 300}) {
		t.Errorf("big-endian int16 array: %v, %v; want [1 -2 300]", got, err)
	}
	b, err := Get(v, "b") // stored under the bytes key b'b'
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Ints(b); err != nil || !slices.Equal(got, []int{4, 5}) {
		t.Errorf("list: %v, %v; want [4 5]", got, err)
	}
	c, err := Get(v, "c")
	if err != nil {
		t.Fatal(err)
	}
	pix, shape, err := Uint8s(c, -1, 3)
	if err != nil || !slices.Equal(pix, []byte{0, 1, 2, 3, 4, 5}) || !slices.Equal(shape, []int{2, 3}) {
		t.Errorf("uint8 array: %v of shape %v, %v; want 0..5 of shape [2 3]", pix, shape, err)
	}
	if _, _, err := Uint8s(c, -1, 4); err == nil || !strings.Contains(err.Error(), "want [N, 4]") {
		t.Errorf("wrong shape: %v", err)
	}
	if _, _, err := Uint8s(a, -1); err == nil || !strings.Contains(err.Error(), "uint8") {
		t.Errorf("wrong dtype: %v", err)
	}
	if _, err := Get(v, "d"); err == nil {
		t.Error("missing key: no error")
	}
}

func TestRefusesFortranOrder(t *testing.T) {
	v, err := Load(mustHex(t, fortranHex))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Uint8s(v, 2, 3); err == nil || !strings.Contains(err.Error(), "Fortran") {
		t.Fatalf("Fortran-ordered array: %v", err)
	}
}

func TestRefusesOtherGlobals(t *testing.T) {
	// Protocol 0 for os.system('true'), as pickle.dumps of an object reducing to it writes.
	_, err := Load([]byte("cos\nsystem\n(Vtrue\ntR."))
	if err == nil || !strings.Contains(err.Error(), "os.system, which is not allowed") {
		t.Fatalf("error %v, want a refusal", err)
	}
}

func TestBadInputsFail(t *testing.T) {
	whole := mustHex(t, dictHex)
	for n := range len(whole) {
		if _, err := Load(whole[:n]); err == nil {
			t.Fatalf("pickle cut to %d of %d bytes: no error", n, len(whole))
		}
	}
}

// FuzzLoad checks that no input crashes the reader or makes it allocate beyond the input's size.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{dictHex, fortranHex} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Load(b)
		if err == nil {
			Ints(v)
			Uint8s(v, -1)
			Get(v, "data")
		}
	})
}
