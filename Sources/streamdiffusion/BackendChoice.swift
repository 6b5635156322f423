import ArgumentParser
import Tensors
import VulkanBackend

/// Checks `--backend`, `--device` and `--vulkan-weights` before anything loads.
func validateBackend(_ name: String?, device: Int?, vulkanWeights: String? = nil) throws {
    if let name, name != "cpu", name != "vulkan" { throw ValidationError("--backend must be cpu or vulkan (got '\(name)')") }
    if let device {
        guard device >= 0 else { throw ValidationError("--device must be ≥ 0 (got \(device))") }
        if name == "cpu" { throw ValidationError("--device selects a Vulkan device; it does not apply to --backend cpu") }
    }
    if let vulkanWeights {
        _ = try vulkanWeightStorage(vulkanWeights)
        if name == "cpu" { throw ValidationError("--vulkan-weights sets the Vulkan backend's weight storage; it does not apply to --backend cpu") }
    }
}

/// `--vulkan-weights fp32|fp16` (nil: fp32).
func vulkanWeightStorage(_ name: String?) throws -> VulkanBackend.WeightStorage {
    switch name {
    case nil, "fp32": return .float32
    case "fp16": return .float16
    case let other?: throw ValidationError("--vulkan-weights must be fp32 or fp16 (got '\(other)')")
    }
}

/// The backend `--backend`, `--device`, `--vulkan-weights`, `--dtype` and `--threads` ask for.
/// Without `--backend`: Vulkan when a Vulkan GPU is present (or `--device` or `--vulkan-weights`,
/// which only Vulkan takes, is given) and no CPU-only dtype (bf16) is asked for, else the CPU. An
/// explicit `--backend vulkan` accepts a CPU implementation such as lavapipe (useful for testing).
func makeBackend(_ name: String?, device: Int?, vulkanWeights: String? = nil, dtype: String?, threads: Int?) throws -> any Backend {
    try validateBackend(name, device: device, vulkanWeights: vulkanWeights)
    let vulkanDType = dtype == nil || dtype == "fp32"
    let named = device != nil || vulkanWeights != nil
    let useVulkan = name == "vulkan" || (name == nil && (named || (vulkanDType && VulkanBackend.gpuAvailable)))
    guard useVulkan else { return try cpuBackend(dtype: dtype, threads: threads) }
    if let dtype, dtype != "fp32" {
        throw ValidationError("--dtype \(dtype) is not supported by the Vulkan backend (it computes in fp32)")
    }
    return try VulkanBackend(options: .init(deviceIndex: device, allowCPU: true, weightStorage: vulkanWeightStorage(vulkanWeights)))
}

/// Where a command computes: the options every model-running command and stream benchmark shares.
struct BackendOptions: ParsableArguments {
    @Option(help: "Compute precision: fp32 or bf16 (default: bf16 where the CPU has AVX-512 BF16).")
    var dtype: String?

    @Option(help: "Thread count (default: every core).")
    var threads: Int?

    @Option(name: .customLong("backend"), help: "Compute backend: cpu or vulkan (default: vulkan when a Vulkan GPU is present, else cpu).")
    var backendName: String?

    @Option(help: "Vulkan device index (see `streamdiffusion devices`; default: the first discrete, then integrated GPU).")
    var device: Int?

    @Option(help: "Vulkan weight storage: fp32 (default) or fp16 (convolution and linear weights rounded to fp16: half the memory; activations stay fp32).")
    var vulkanWeights: String?

    func validate() throws { try validateBackend(backendName, device: device, vulkanWeights: vulkanWeights) }

    func backend() throws -> any Backend {
        try makeBackend(backendName, device: device, vulkanWeights: vulkanWeights, dtype: dtype, threads: threads)
    }

    /// The same choice as command-line arguments (for a subprocess of this binary).
    var arguments: [String] {
        [("--dtype", dtype), ("--threads", threads.map(String.init)), ("--backend", backendName),
         ("--device", device.map(String.init)), ("--vulkan-weights", vulkanWeights)]
            .flatMap { flag, value in value.map { [flag, $0] } ?? [] }
    }
}

/// `streamdiffusion devices`: the Vulkan devices `--device` can name.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "List the Vulkan devices (the indices --device takes) and the default backend.")

    func run() throws {
        let devices = try VulkanBackend.devices()
        let preferred = devices.filter(\.isGPU).min { ($0.kind == .discrete ? 0 : 1, $0.index) < ($1.kind == .discrete ? 0 : 1, $1.index) }
        for d in devices { print("\(d == preferred ? "*" : " ") \(d)") }
        print(preferred.map { "default backend: vulkan on device \($0.index)" }
              ?? "default backend: cpu (no Vulkan GPU; --backend vulkan runs on a CPU device such as lavapipe)")
    }
}
