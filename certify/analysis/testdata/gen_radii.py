# Writes radii.tsv: for each grid START:STOP:STEP, the floats (float.hex,
# exact) of numpy.arange(start, stop + step, step), the reference's radius
# grid. Run with a Python that has numpy:  python3 gen_radii.py > radii.tsv
import numpy as np

grids = ["0.25:2.25:0.25", "0:2.25:0.125", "0:2.25:0.01", "0.1:0.9:0.2",
         "0:1:0.1", "0.05:1.5:0.05", "1:0:0.5", "0:0:0.25", "0.3:0.3:0.1"]
print("grid\tvalues")
for g in grids:
    start, stop, step = (float(x) for x in g.split(":"))
    r = np.arange(start, stop + step, step)
    print(g + "\t" + " ".join(float(x).hex() for x in r))
