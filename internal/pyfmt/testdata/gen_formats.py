# Writes formats.tsv: floats (as float.hex, exact) with Python's own
# '{:.3}', '{:.2f}' and repr of each. Run with any CPython 3:
#   python3 gen_formats.py > formats.tsv
import random

values = [0.0, -0.0, 1.0, 2.0, 10.0, 99.0, 100.0, 99.96, 99.94, 999.5, 9.995,
          0.125, 0.375, 2.675, 0.005, 1.005, 0.015, 0.045, 0.00099995, 1e-5,
          0.0001, 0.00012345, 1e15, 1e16, 1.5e16, 123456789.0, 1234567.0,
          0.25, 0.5, 0.75, 1.25, 1.5, 1.75, 2.25, 0.1 + 0.2, 1 / 3, -2.5,
          float("inf"), float("-inf"), float("nan"), 5e-324, 1.7976931348623157e308]
values += [k / 1000 for k in range(0, 4000, 7)]
values += [k * 0.01 for k in range(0, 300)]
rng = random.Random(1)
values += [rng.uniform(-1, 1) * 10 ** rng.randint(-8, 18) for _ in range(500)]
print("hex\tg3\tf2\trepr")
for v in values:
    print("{}\t{:.3}\t{:.2f}\t{!r}".format(v.hex(), v, v, v))
