# The student's m* is not the B / (h - p) of the h, p and B it prints (here 1.5 times it:
# still within the factor 2 the observation allows). Every case must lose its points.
s|(h > p) ? b / (h - p) : 0|(h > p) ? 1.5 * b / (h - p) : 0|
