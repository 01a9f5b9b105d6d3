package safepickle

import (
	"fmt"
	"io"

	"github.com/nlpodyssey/gopickle/pickle"
)

// Unpickle decodes a pickle that Scan has passed. A global resolves only
// through globals, keyed "module.name"; any other, os.system or
// builtins.eval say, is refused with an error naming it, and nothing is
// ever looked up or run in Python. gopickle answers a few names itself
// before asking (collections.OrderedDict, and Python 2's
// copy_reg._reconstructor and __builtin__.object), which only build its own
// Go values. persistentLoad resolves persistent ids and may be nil for
// pickles that must not hold any. gopickle trusts its input and can panic on
// malformed opcode sequences; that becomes an error here.
func Unpickle(r io.Reader, globals map[string]any, persistentLoad func(any) (any, error)) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("malformed pickle: %v", p)
		}
	}()
	u := pickle.NewUnpickler(r)
	u.FindClass = func(module, name string) (any, error) {
		if g, ok := globals[module+"."+name]; ok {
			return g, nil
		}
		return nil, fmt.Errorf("refusing global %s.%s, which is not allowed here", module, name)
	}
	u.PersistentLoad = persistentLoad
	return u.Load()
}
