print("anchorage-sim: not yet")
