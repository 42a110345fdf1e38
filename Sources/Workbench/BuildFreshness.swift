// Whether an executable that SwiftPM built holds the current sources: the check behind the study
// runner's refusal to train with a `clip` older than the code its cache ids name.

import Foundation

/// Decides which source files an executable may predate, from modification dates alone.
///
/// A source newer than the executable usually means it was edited after the last build. One case
/// is not: an edit that changes no code (a comment, say). SwiftPM compiles the module again, but
/// the compiler leaves the object files as they were and the executable is not linked again, so it
/// stays older than the source for good, and `swift build` has nothing left to do. The build
/// folder beside the executable tells the two apart: for a module `M` (the folder under `Sources/`),
/// `M.build/` holds the compiler's dependency files (`*.d`, written at every compile) and its
/// object files (`*.o`, rewritten only when they change).
public enum BuildFreshness {
    /// The sources among `sources` (each `Sources/M/…` with its modification date) that the
    /// executable at `executable`, modified at `built`, may not include.
    ///
    /// A source is stale when it is newer than the executable, unless `M.build/` beside the
    /// executable shows both that `M` was compiled since the source changed (a `.d` file no older
    /// than it) and that the compile changed no object file since the link (no `.o` newer than the
    /// executable). A module without such a folder is judged by the dates alone.
    public static func staleSources(_ sources: [(path: String, date: Date)], executable: String, built: Date) -> [(path: String, date: Date)] {
        let folder = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent().path
        return sources.filter { source in
            guard source.date > built else { return false }
            let parts = source.path.split(separator: "/")
            guard parts.count >= 3, parts[0] == "Sources",
                let record = buildRecord(folder + "/" + parts[1] + ".build", built: built)
            else { return true }
            return record.compiled < source.date || record.objectsChanged
        }
    }

    /// The newest dependency file's date in a module's build folder, and whether an object file
    /// there is newer than `built`; nil when the folder holds no dependency file.
    static func buildRecord(_ folder: String, built: Date) -> (compiled: Date, objectsChanged: Bool)? {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder) else { return nil }
        var compiled: Date?
        var objectsChanged = false
        for name in names {
            guard name.hasSuffix(".d") || name.hasSuffix(".o"),
                let date = (try? fm.attributesOfItem(atPath: folder + "/" + name))?[.modificationDate] as? Date
            else { continue }
            if name.hasSuffix(".d") {
                compiled = max(compiled ?? date, date)
            } else if date > built {
                objectsChanged = true
            }
        }
        return compiled.map { ($0, objectsChanged) }
    }
}
