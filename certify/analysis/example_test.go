package analysis_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/certify/analysis"
)

func Example() {
	logs := map[string]string{
		"$\\sigma = 0.25$": "0\t3\t3\t0.377\t1\t0:00:14.172309\n1\t8\t8\t0.465\t1\t0:00:14.101748\n2\t8\t-1\t0.0\t0\t0:00:14.198102\n3\t0\t6\t0.601\t0\t0:00:14.274102\n",
		"$\\sigma = 0.50$": "0\t3\t3\t0.912\t1\t0:00:14.300000\n1\t8\t-1\t0.0\t0\t0:00:14.200000\n2\t8\t8\t0.127\t1\t0:00:14.100000\n3\t0\t-1\t0.0\t0\t0:00:14.000000\n",
	}
	var models []analysis.Model
	for _, legend := range []string{"$\\sigma = 0.25$", "$\\sigma = 0.50$"} {
		log, err := analysis.ParseCertifyLog(strings.NewReader(certify.CertifyHeader+"\n"+logs[legend]), legend)
		if err != nil {
			fmt.Println(err)
			return
		}
		models = append(models, analysis.Model{Legend: legend, Log: log})
	}
	radii, err := analysis.ParseRadii("0:0.75:0.25")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := analysis.NewTable(models, radii).Write(os.Stdout, analysis.LaTeX); err != nil {
		fmt.Println(err)
	}
	if err := analysis.UpperEnvelope(models, radii).Write(os.Stdout, analysis.LaTeX); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("abstained: %v%%\n", models[1].Log.AbstentionRate())
	// Output:
	// $\ell_2$ Radius& $0.0$& $0.25$& $0.5$& $0.75$\\
	// \midrule
	// $\sigma = 0.25$ & \textbf{0.50} & \textbf{0.50} & 0.00 & 0.00\\
	// $\sigma = 0.50$ & 0.50 & 0.25 & \textbf{0.25} & \textbf{0.25}\\
	// $\ell_2$ Radius& $0.0$& $0.25$& $0.5$& $0.75$\\
	// \midrule
	//  & $^{(0.50)}$0.50 & $^{(0.50)}$0.50 & $^{(0.50)}$0.25 & $^{(0.50)}$0.25\\
	// abstained: 50%
}
