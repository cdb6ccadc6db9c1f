"""numpy allocates its array data with malloc from C: 1000 x 1000 float64 = 8,000,000
bytes at a known line, kept until the end."""
import numpy as np

kept = np.ones((1000, 1000))  # L:ones
print(kept.sum())
