import ArgumentParser
import Tensors
import VulkanBackend

/// Checks `--backend` and `--device` before anything loads.
func validateBackend(_ name: String?, device: Int?) throws {
    if let name, name != "cpu", name != "vulkan" { throw ValidationError("--backend must be cpu or vulkan (got '\(name)')") }
    if let device {
        guard device >= 0 else { throw ValidationError("--device must be ≥ 0 (got \(device))") }
        if name == "cpu" { throw ValidationError("--device selects a Vulkan device; it does not apply to --backend cpu") }
    }
}

/// The backend `--backend`, `--device`, `--dtype` and `--threads` ask for. Without `--backend`:
/// Vulkan when a Vulkan GPU is present (or `--device` names one) and no CPU-only dtype (bf16) is
/// asked for, else the CPU. An explicit `--backend vulkan` accepts a CPU implementation such as
/// lavapipe (useful for testing).
func makeBackend(_ name: String?, device: Int?, dtype: String?, threads: Int?) throws -> any Backend {
    try validateBackend(name, device: device)
    let vulkanDType = dtype == nil || dtype == "fp32"
    let useVulkan = name == "vulkan" || (name == nil && (device != nil || (vulkanDType && VulkanBackend.gpuAvailable)))
    guard useVulkan else { return try cpuBackend(dtype: dtype, threads: threads) }
    if let dtype, dtype != "fp32" {
        throw ValidationError("--dtype \(dtype) is not supported by the Vulkan backend (it computes in fp32)")
    }
    return try VulkanBackend(options: .init(deviceIndex: device, allowCPU: true))
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
