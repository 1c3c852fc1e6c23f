// Shared by the JSON Schema tests: the golden fixture (scripts/goldens/json_schema_cases.py), random
// accepting walks through a DFA that always finish, and the Python validator run through
// LORAD_TEST_PYTHON (scripts/tests/json_schema_validate.py).
import Foundation
import Grammar
import JSON

struct SchemaCase {
    struct Instance {
        let json: String
        let valid: Bool
        let differs: String?
        let pretty: String?
    }
    let name: String
    let schema: JSONValue
    let instances: [Instance]
}

struct SchemaTestSetupError: Error, CustomStringConvertible { let description: String }

enum SchemaFixtures {
    static func load() throws -> [SchemaCase] {
        guard let url = Bundle.module.url(forResource: "json_schema_cases", withExtension: "json", subdirectory: "Fixtures") else {
            throw SchemaTestSetupError(description: "Fixtures/json_schema_cases.json is missing from the test bundle")
        }
        let root = try JSONValue.parse(Array(try Data(contentsOf: url)))
        guard case .object(let top) = root, case .array(let cases)? = top.first(where: { $0.0 == "cases" })?.1 else {
            throw SchemaTestSetupError(description: "json_schema_cases.json: no 'cases' array")
        }
        return try cases.map { c in
            guard case .object(let kvs) = c,
                  case .string(let name)? = field(kvs, "name"), let schema = field(kvs, "schema"),
                  case .array(let rows)? = field(kvs, "instances")
            else { throw SchemaTestSetupError(description: "json_schema_cases.json: a malformed case") }
            let instances = try rows.map { r in
                guard case .object(let row) = r, case .string(let json)? = field(row, "json"), case .bool(let valid)? = field(row, "valid")
                else { throw SchemaTestSetupError(description: "json_schema_cases.json: a malformed instance in \(name)") }
                var differs: String? = nil, pretty: String? = nil
                if case .string(let d)? = field(row, "differs") { differs = d }
                if case .string(let p)? = field(row, "pretty") { pretty = p }
                return SchemaCase.Instance(json: json, valid: valid, differs: differs, pretty: pretty)
            }
            return SchemaCase(name: name, schema: schema, instances: instances)
        }
    }

    static func field(_ kvs: [(String, JSONValue)], _ key: String) -> JSONValue? { kvs.first { $0.0 == key }?.1 }
}

/// A random string the DFA accepts. Bytes are chosen at random among live ones (ASCII preferred half
/// the time) while the output is shorter than `softLength`; past it, only bytes that bring the walk
/// closer to an accepting state, so every walk ends. Stops at an accepting state with probability
/// 1/3 (always once past `softLength`).
func acceptingWalk(_ dfa: ByteDFA, distance: [Int], rng: inout SeededRandom, softLength: Int = 200) -> [UInt8] {
    var s = dfa.start
    var out: [UInt8] = []
    while true {
        if dfa.isAccepting(s) && (out.count >= softLength || rng.next() % 3 == 0) { return out }
        var choices = (0...255).map(UInt8.init).filter { dfa.next(s, $0) != ByteDFA.dead }
        if choices.isEmpty { return out }  // an accepting state with no way on (live states have one)
        if out.count >= softLength {
            choices = choices.filter { distance[Int(dfa.next(s, $0))] < distance[Int(s)] }
        } else if rng.next() % 2 == 0, choices.contains(where: { $0 < 0x80 }) {
            choices = choices.filter { $0 < 0x80 }
        }
        let b = choices.randomElement(using: &rng)!
        out.append(b)
        s = dfa.next(s, b)
    }
}

/// Bytes from each state to the nearest accepting state (Int.max for the dead state).
func distanceToAccept(_ dfa: ByteDFA) -> [Int] {
    var distance = [Int](repeating: Int.max, count: dfa.stateCount)
    var predecessors = [[UInt32]](repeating: [], count: dfa.stateCount)
    for s in 1..<dfa.stateCount {
        var targets = Set<UInt32>()
        for b in 0...255 { targets.insert(dfa.next(UInt32(s), UInt8(b))) }
        for t in targets where t != ByteDFA.dead { predecessors[Int(t)].append(UInt32(s)) }
    }
    var queue: [Int] = []
    for s in 1..<dfa.stateCount where dfa.isAccepting(UInt32(s)) { distance[s] = 0; queue.append(s) }
    var head = 0
    while head < queue.count {
        let t = queue[head]; head += 1
        for p in predecessors[t] where distance[Int(p)] == Int.max {
            distance[Int(p)] = distance[t] + 1
            queue.append(Int(p))
        }
    }
    return distance
}

enum PythonValidator {
    static var python: String? {
        guard let p = ProcessInfo.processInfo.environment["LORAD_TEST_PYTHON"], !p.isEmpty else { return nil }
        return p
    }

    /// scripts/tests/json_schema_validate.py, found from this file's path.
    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/tests/json_schema_validate.py").path
    }

    /// (ok, error) per output, from jsonschema.
    static func validate(python: String, schema: JSONValue, outputs: [String]) throws -> [(Bool, String)] {
        let job = JSONValue.object([("schema", schema), ("outputs", .array(outputs.map { .string($0) }))])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("job.json")
        try Data(job.serialized().utf8).write(to: input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, input.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SchemaTestSetupError(description: "\(script) exited with status \(process.terminationStatus)")
        }
        guard case .array(let rows) = try JSONValue.parse(Array(data)) else {
            throw SchemaTestSetupError(description: "\(script) did not print a JSON list")
        }
        return rows.map { row in
            guard case .object(let kvs) = row else { return (false, "malformed row") }
            var ok = false, error = ""
            if case .bool(let b)? = SchemaFixtures.field(kvs, "ok") { ok = b }
            if case .string(let e)? = SchemaFixtures.field(kvs, "error") { error = e }
            return (ok, error)
        }
    }
}
