// The numerical modules are optimised in debug builds too (`-O -assert-config Debug`, see
// Package.swift); these tests check that such a build still evaluates every check a plain debug
// build does, and that release builds drop them as documented.

import Compute
import Testing

@Suite("Build checks")
struct BuildChecksTests {
    #if DEBUG
        @Test("Debug builds evaluate asserts and preconditions inside the optimised numerical modules")
        func debugKeepsChecks() {
            #expect(BuildChecks.assertions)
            #expect(BuildChecks.preconditions)
            #expect(BuildChecks.summary == "asserts on, preconditions on")
        }

        @Test("A precondition inside an optimised module stops the process in a debug build")
        func preconditionTraps() async {
            // `Threads.set` is compiled in Compute (not inlined into this test), under its flags.
            await #expect(processExitsWith: .failure) { Threads.set(0) }
        }
    #else
        @Test("Release builds (-Ounchecked) drop asserts and preconditions from the numerical modules")
        func releaseDropsChecks() {
            #expect(!BuildChecks.assertions)
            #expect(!BuildChecks.preconditions)
        }
    #endif
}
