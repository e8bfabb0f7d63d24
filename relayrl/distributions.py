"""Constants of the policy distributions, shared by the torch model and its NumPy twin."""

import math

LOG_2PI = math.log(2 * math.pi)
SDE_EPSILON = 1e-6  # added to gSDE's variance, as in SB3, so that zero features never give a zero std
