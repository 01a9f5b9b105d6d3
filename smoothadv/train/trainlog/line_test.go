package trainlog

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

// TestLogLineAsTrainPGD: a log.txt line is byte for byte what train_pgd.py's
// format strings make of the same numbers ("{}\t{:.2f}\t{:.3}..."), as
// Python itself formats them: time with two decimals (0.70, 11.02), the
// rest with three significant digits.
func TestLogLineAsTrainPGD(t *testing.T) {
	stats := []Stats{
		{Epoch: 0, Time: 700 * time.Millisecond, LR: 0.1, TrainLoss: 2.30258, TestLoss: 1.5, TrainAcc: 47.0, TestAcc: 9.999, TestAccNoisy: 100},
		{Epoch: 11, Time: 11023400 * time.Microsecond, LR: 0.0001, TrainLoss: 0.000123456, TestLoss: 12345.6, TrainAcc: 47.2, TestAcc: 0.5, TestAccNoisy: 33.3333},
		{Epoch: 149, Time: 3725*time.Second + 5*time.Millisecond, LR: 1e-5, TrainLoss: 0.6875, TestLoss: 0.99951, TrainAcc: 99.95, TestAcc: 0, TestAccNoisy: 66.6666},
	}
	const script = `import json, sys
for s in json.load(sys.stdin):
    # the reference's numbers are Python floats (time.time() differences, AverageMeter averages)
    v = [s["Epoch"], s["Time"] / 1e9] + [float(s[k]) for k in ("LR", "TrainLoss", "TestLoss", "TrainAcc", "TestAcc")]
    print("{}\t{:.2f}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{:.3}".format(*v))
    print("{}\t{:.2f}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{:.3}".format(*v, float(s["TestAccNoisy"])))`
	in, err := json.Marshal(stats)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Python(), "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", testenv.Python(), err, stderr.String())
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, st := range stats {
		for j, adv := range []bool{false, true} {
			got := Line(st, adv)
			if got != want[2*i+j] {
				t.Errorf("adversarial %v: line %q, train_pgd.py writes %q", adv, got, want[2*i+j])
			}
		}
	}
}
