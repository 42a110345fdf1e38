// Which run-time checks this build of the numerical modules evaluates. Debug builds compile the
// hot targets with `-O -assert-config Debug` (fast, every check kept); release builds with
// `-Ounchecked` (no checks in the hot loops). See Package.swift and the README's "Build flags".

/// The checks compiled into this module (the same flags build every numerical target).
public enum BuildChecks {
    /// Whether `assert` conditions are evaluated: debug builds, whose `-assert-config Debug`
    /// keeps them under `-O`.
    public static let assertions: Bool = {
        var evaluated = false
        assert({ evaluated = true; return true }())
        return evaluated
    }()

    /// Whether `precondition` conditions are evaluated: every configuration but `-Ounchecked`.
    public static let preconditions: Bool = {
        var evaluated = false
        precondition({ evaluated = true; return true }())
        return evaluated
    }()

    /// One line for `clip info` and provenance, e.g. "asserts on, preconditions on".
    public static var summary: String {
        "asserts \(assertions ? "on" : "off"), preconditions \(preconditions ? "on" : "off")"
    }
}
