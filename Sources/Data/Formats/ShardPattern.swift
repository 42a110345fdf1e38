// Shard lists from WebDataset patterns ("train-{000000..000999}.tar", or a shell glob such as
// "train-*.tar"), and the share of them that each rank of a distributed run reads.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A bad shard pattern, or shards that cannot be shared among the ranks: names the pattern and the
/// problem.
public struct ShardPatternError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The pattern as given.
    public let pattern: String
    /// What is wrong.
    public let problem: String

    public init(pattern: String, problem: String) {
        self.pattern = pattern
        self.problem = problem
    }

    public var description: String { "shard pattern \"\(pattern)\": \(problem)" }
}

/// The shard names a WebDataset pattern stands for.
///
/// Rules (those of the `braceexpand` package as `webdataset` uses it, minus letter ranges, steps
/// and escapes):
/// - `{lo..hi}`: the decimal numbers lo through hi, each written with at least as many digits as
///   `lo` is written with (zeros in front): `{000..011}` → 000, 001, …, 011; `{8..11}` → 8, 9, 10,
///   11. `hi` must not be below `lo`, and both must be digits only.
/// - `{a,b,c}`: each alternative in turn; alternatives may be empty and may hold brace groups.
/// - Several groups multiply, the leftmost varying slowest: `{a,b}{1..2}` → a1, a2, b1, b2.
/// - `p1::p2`: the names of p1, then those of p2.
/// - A name whose file part holds `*`, `?` or `[` (after brace expansion) stands for the files of
///   its folder that match it as a shell glob (fnmatch), in byte order of their names; a glob that
///   matches no file is an error. Only the file part may be a glob, not the folders.
/// - At most `maximumNames` names in all; a group needs a range or at least one comma.
public struct ShardPattern: Sendable, Hashable {
    /// The most names a pattern may expand to.
    public static let maximumNames = 1_000_000

    /// The pattern as given.
    public let pattern: String
    /// Its names, in order.
    public let shards: [String]

    /// Expands `pattern`; throws a `ShardPatternError` for a malformed pattern.
    public init(_ pattern: String) throws(ShardPatternError) {
        self.pattern = pattern
        var parts: [[Node]] = []
        var total = 0
        for piece in ShardPattern.pieces(of: pattern) {
            guard !piece.isEmpty else {
                throw ShardPatternError(pattern: pattern, problem: "an empty pattern before, between or after \"::\"")
            }
            var parser = Parser(characters: Array(piece), whole: pattern)
            let sequence = try parser.parseAll()
            let count = try ShardPattern.count(of: sequence, pattern: pattern)
            total += count
            guard total <= ShardPattern.maximumNames else {
                throw ShardPatternError(pattern: pattern,
                                        problem: "expands to more than \(ShardPattern.maximumNames) names")
            }
            parts.append(sequence)
        }
        var shards: [String] = []
        shards.reserveCapacity(total)
        for sequence in parts {
            for name in ShardPattern.expand(sequence) {
                let filePart = name.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
                if filePart.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
                    shards += try ShardPattern.glob(name, pattern: pattern)
                } else {
                    shards.append(name)
                }
            }
        }
        guard shards.count <= ShardPattern.maximumNames else {
            throw ShardPatternError(pattern: pattern, problem: "expands to more than \(ShardPattern.maximumNames) names")
        }
        self.shards = shards
    }

    /// The shards of `rank` among `worldSize` ranks: shard i goes to rank i mod worldSize.
    /// Throws when there are fewer shards than ranks (a rank would have none).
    public func shards(forRank rank: Int, worldSize: Int) throws(ShardPatternError) -> [String] {
        guard worldSize >= 1, (0..<worldSize).contains(rank) else {
            throw ShardPatternError(pattern: pattern, problem: "rank \(rank) is not in 0..<\(worldSize)")
        }
        guard shards.count >= worldSize else {
            throw ShardPatternError(
                pattern: pattern,
                problem: "\(shards.count) shard\(shards.count == 1 ? "" : "s") cannot be shared among \(worldSize) ranks: every rank needs at least one shard")
        }
        return stride(from: rank, to: shards.count, by: worldSize).map { shards[$0] }
    }

    // MARK: - Parsing

    /// A piece of a pattern: text, alternatives (each a sequence), or a numeric range.
    indirect enum Node: Hashable, Sendable {
        case text(String)
        case alternatives([[Node]])
        case range(low: Int, high: Int, width: Int)
    }

    /// The files that the glob `name` (a folder, then a file-name glob) matches, sorted.
    static func glob(_ name: String, pattern: String) throws(ShardPatternError) -> [String] {
        let slash = name.lastIndex(of: "/")
        let folder = slash.map { String(name[..<$0]) } ?? ""
        let file = slash.map { String(name[name.index(after: $0)...]) } ?? name
        if folder.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
            throw ShardPatternError(pattern: pattern, problem: "only the file part of \"\(name)\" may be a glob, not its folders")
        }
        let listed = slash == nil ? "." : (folder.isEmpty ? "/" : folder)
        guard let dir = opendir(listed) else {
            throw ShardPatternError(pattern: pattern, problem: "cannot list the folder \"\(listed)\" for the glob \"\(file)\" (\(String(cString: strerror(errno))))")
        }
        defer { closedir(dir) }
        var matches: [String] = []
        while let entry = readdir(dir) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if entryName.hasPrefix(".") && !file.hasPrefix(".") { continue }
            if fnmatch(file, entryName, 0) == 0 { matches.append(entryName) }
        }
        guard !matches.isEmpty else {
            throw ShardPatternError(pattern: pattern, problem: "no file in \"\(listed)\" matches \"\(file)\"")
        }
        return matches.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { slash == nil ? $0 : "\(folder)/\($0)" }
    }

    /// The "::"-separated pieces.
    static func pieces(of pattern: String) -> [Substring] {
        var pieces: [Substring] = []
        var rest = pattern[...]
        while let separator = rest.firstRange(of: "::") {
            pieces.append(rest[..<separator.lowerBound])
            rest = rest[separator.upperBound...]
        }
        pieces.append(rest)
        return pieces
    }

    struct Parser {
        let characters: [Character]
        let whole: String
        var position = 0

        /// The sequence of the whole piece.
        mutating func parseAll() throws(ShardPatternError) -> [Node] {
            let sequence = try parseSequence(inGroup: false)
            if position < characters.count {  // only a stray "}" stops a top-level sequence
                throw error("the \"}\" at character \(position + 1) closes no \"{\"")
            }
            return sequence
        }

        /// Text and groups up to the end, or (in a group) up to "," or "}".
        mutating func parseSequence(inGroup: Bool) throws(ShardPatternError) -> [Node] {
            var nodes: [Node] = []
            var text = ""
            while position < characters.count {
                let c = characters[position]
                if c == "}" || (inGroup && c == ",") { break }
                if c == "{" {
                    if !text.isEmpty { nodes.append(.text(text)) }
                    text = ""
                    nodes.append(try parseGroup())
                } else {
                    text.append(c)
                    position += 1
                }
            }
            if !text.isEmpty { nodes.append(.text(text)) }
            return nodes
        }

        /// A group, `position` at its "{".
        mutating func parseGroup() throws(ShardPatternError) -> Node {
            let open = position
            position += 1
            var alternatives: [[Node]] = []
            var sawComma = false
            while true {
                alternatives.append(try parseSequence(inGroup: true))
                guard position < characters.count else {
                    throw error("the \"{\" at character \(open + 1) is never closed")
                }
                let c = characters[position]
                position += 1
                if c == "}" { break }
                sawComma = true
            }
            if sawComma { return .alternatives(alternatives) }
            let inside = String(characters[(open + 1)..<(position - 1)])
            guard let dots = inside.firstRange(of: "..") else {
                throw error("the group \"{\(inside)}\" at character \(open + 1) is neither a range {lo..hi} nor alternatives {a,b}")
            }
            let low = String(inside[..<dots.lowerBound])
            let high = String(inside[dots.upperBound...])
            let isNumber = { (s: String) in !s.isEmpty && s.count <= 18 && s.allSatisfy { $0 >= "0" && $0 <= "9" } }
            guard isNumber(low), isNumber(high), let lo = Int(low), let hi = Int(high) else {
                throw error("the range \"{\(inside)}\" at character \(open + 1) is not two decimal numbers lo..hi (up to 18 digits each)")
            }
            guard lo <= hi else {
                throw error("the range \"{\(inside)}\" at character \(open + 1) descends (\(low) > \(high))")
            }
            return .range(low: lo, high: hi, width: low.count)
        }

        func error(_ problem: String) -> ShardPatternError {
            ShardPatternError(pattern: whole, problem: problem)
        }
    }

    /// The number of names a sequence stands for, checked against `maximumNames` as it grows.
    static func count(of sequence: [Node], pattern: String) throws(ShardPatternError) -> Int {
        var product = 1
        for node in sequence {
            let n: Int
            switch node {
            case .text: n = 1
            case .range(let low, let high, _): n = high - low + 1
            case .alternatives(let choices):
                var sum = 0
                for choice in choices {
                    sum += try count(of: choice, pattern: pattern)
                    if sum > maximumNames { break }
                }
                n = sum
            }
            let (next, overflow) = product.multipliedReportingOverflow(by: n)
            guard !overflow, next <= maximumNames else {
                throw ShardPatternError(pattern: pattern, problem: "expands to more than \(maximumNames) names")
            }
            product = next
        }
        return product
    }

    /// The names of a sequence, leftmost group slowest.
    static func expand(_ sequence: [Node]) -> [String] {
        var names = [""]
        for node in sequence {
            let options: [String]
            switch node {
            case .text(let text): options = [text]
            case .range(let low, let high, let width):
                options = (low...high).map { value in
                    let digits = String(value)
                    return String(repeating: "0", count: max(0, width - digits.count)) + digits
                }
            case .alternatives(let choices): options = choices.flatMap(expand)
            }
            names = names.flatMap { prefix in options.map { prefix + $0 } }
        }
        return names
    }
}
