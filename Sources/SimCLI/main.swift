// Placeholder until the simulator lands.
print("anchorage-sim: not yet")
