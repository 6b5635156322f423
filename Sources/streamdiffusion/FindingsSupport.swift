import ArgumentParser
import Foundation
import ModelFiles
import Models
import StreamDiffusion
import Tensors

/// Helpers shared by the findings benchmarks (`bench scaling`, `bench guidance`, `bench ssf`).
enum BenchList {
    /// A comma-separated option value parsed item by item; `check` names what a valid item is.
    static func parse<T>(_ text: String, option: String, _ convert: (String) -> T?, valid: String,
                         check: (T) -> Bool = { _ in true }) throws -> [T] {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty else { throw ValidationError("\(option) needs at least one value (\(valid))") }
        return try parts.map { part in
            guard let value = convert(part), check(value) else {
                throw ValidationError("\(option): bad value '\(part)' (expected \(valid))")
            }
            return value
        }
    }
}

/// `value` as pretty-printed JSON with sorted keys (every bench's `--json` output).
func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// Prints `value` as one JSON object (`jsonText`).
func printJSON(_ value: some Encodable) throws { print(try jsonText(value)) }

/// The longest run of consecutive `true` values (0 when there is none).
func longestRun(_ flags: [Bool]) -> Int {
    var best = 0, current = 0
    for flag in flags {
        current = flag ? current + 1 : 0
        best = max(best, current)
    }
    return best
}

/// The model options of the benchmarks that run the bundled demo model (`bench guidance`, `bench ssf`).
struct DemoBenchModelOptions: ParsableArguments {
    @Option(help: "A diffusers folder or cached hub id (default: the bundled demo model, even when sd-turbo is cached).")
    var model: String?

    @Option(help: "Picture size, a multiple of 8 (default: the model's native size, 128 for the demo model).")
    var size: Int?

    @Option(help: "Compute precision: fp32 or bf16 (default: bf16 where the CPU has AVX-512 BF16).")
    var dtype: String?

    @Option(help: "Thread count (default: every core).")
    var threads: Int?

    struct Loaded {
        let model: StableDiffusionModel, scheduler: LCMScheduler, backend: CPUBackend
        let size: Int
        /// The model folder's name, for reports.
        let name: String
    }

    func load(log: (String) -> Void) throws -> Loaded {
        if let size, size <= 0 || size % 8 != 0 { throw ValidationError("--size must be a positive multiple of 8 (got \(size))") }
        let backend = try cpuBackend(dtype: dtype, threads: threads)
        let path = try model ?? Self.demoModel()
        let loaded = try StableDiffusionModel.load(path, backend: backend)
        log("model \(loaded.folder.root.path) on \(backend)")
        return Loaded(model: loaded, scheduler: try LCMScheduler(contentsOf: loaded.folder.configURL("scheduler")),
                      backend: backend, size: size ?? loaded.nativeSize, name: loaded.folder.root.lastPathComponent)
    }

    /// The bundled demo model, found where every command finds it ($STREAMDIFFUSION_DEMO_MODEL,
    /// ./Models/demo, or beside the build folder). `DefaultModel.choose` prefers a cached sd-turbo,
    /// so it is asked with a hub cache that cannot exist.
    static func demoModel() throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["HF_HUB_CACHE"] = "/nonexistent/streamdiffusion-demo-only"
        return try DefaultModel.choose(locator: ModelLocator(environment: environment)).model
    }
}
