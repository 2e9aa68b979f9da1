def helper(value):
    # a comment line to move things around
    return 1 / value


def outer():
    x = [1, 2, 3]
    return helper(x[0] - 1)
