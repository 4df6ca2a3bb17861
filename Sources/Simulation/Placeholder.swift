// The simulator's world lives here (being written).
public enum Simulation {}
