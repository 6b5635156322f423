import ArgumentParser
import Foundation
import Tensors
import VulkanBackend

/// `bench ops --backend vulkan`: each op timed on a Vulkan device (waiting for the GPU after every
/// call) and on the fp32 CPU backend with every core, in the same run; the ratio is CPU time /
/// Vulkan time (above 1: the GPU is faster). Attention is also timed with the shared-memory-tile
/// kernel, convolutions and linear layers with fp16 weight storage, each as a row of its own; on a
/// device where they run on cooperative matrices, products also on the portable shaders (A/B).
extension OpsBenchCommand {
    struct VulkanRow: Encodable {
        let key: String, summary: String
        let vulkanMs: Double, cpuMs: Double
        let rate: Double, unit: String
        /// CPU time / Vulkan time.
        let speedup: Double
    }

    struct VulkanReport: Encodable {
        let device: String, cpu: String
        var rows: [VulkanRow]
    }

    func runOnVulkan() throws {
        if dtype != nil && dtype != "fp32" { throw ValidationError("--backend vulkan computes in fp32 (--dtype \(dtype ?? ""))") }
        if peer { throw ValidationError("--peer compares with PyTorch on the CPU; it does not apply to --backend vulkan") }
        let weights = try vulkanWeightStorage(vulkanWeights)
        let vulkan = try VulkanBackend(options: .init(deviceIndex: device, allowCPU: true, weightStorage: weights))
        let cpu = try CPUBackend(precision: .float32)
        var report = VulkanReport(device: vulkan.description, cpu: cpu.description, rows: [])
        if !json {
            print("Vulkan op benchmark on \(vulkan.device.name) against \(cpu); median of \(repeats) runs")
            print(pad("op", 60) + pad("Vulkan ms", 11, right: true) + pad("rate", 20, right: true) + pad("CPU ms", 11, right: true)
                  + pad("CPU/Vulkan", 12, right: true))
        }
        // The alternative kernels the backend offers, timed on the ops they change (a row each).
        let tiles = try VulkanBackend(options: .init(deviceIndex: device, allowCPU: true, weightStorage: weights, attention: .sharedMemoryTiles))
        let otherStorage: VulkanBackend.WeightStorage = weights == .float16 ? .float32 : .float16
        let otherWeights = try VulkanBackend(options: .init(deviceIndex: device, allowCPU: true, weightStorage: otherStorage))
        let otherLabel = otherStorage == .float16 ? " [fp16 weights]" : " [fp32 weights]"
        let portable = vulkan.cooperativeMatrix == nil ? nil
            : try VulkanBackend(options: .init(deviceIndex: device, allowCPU: true, weightStorage: weights, cooperativeMatrix: .off))
        for item in try selectedCases() {
            let onCPU = try item.prepare(cpu)
            let cpuMs = OpBenchmark.median(try OpBenchmark.time(warmup: warmup, repeats: repeats, onCPU))
            var variants: [(label: String, backend: VulkanBackend)] = [("", vulkan)]
            if item.key.hasPrefix("attention") { variants.append((" [shared-memory tiles]", tiles)) }
            if item.key.hasPrefix("conv") || item.key.hasPrefix("linear") { variants.append((otherLabel, otherWeights)) }
            if let portable, ["conv", "linear", "matmul"].contains(where: item.key.hasPrefix) { variants.append((" [portable, no coopmat]", portable)) }
            for (label, backend) in variants {
                let onGPU = try item.prepare(backend)
                let gpuMs = OpBenchmark.median(try OpBenchmark.time(warmup: warmup, repeats: repeats) { try onGPU(); try backend.synchronize() })
                let (rate, unit): (Double, String)
                switch item.work {
                case let .flops(f): (rate, unit) = (f / (gpuMs / 1e3) / 1e9, "GFLOP/s")
                case let .bytes(b): (rate, unit) = (b / (gpuMs / 1e3) / 1e9, "GB/s")
                }
                let row = VulkanRow(key: item.key + label, summary: item.summary + label, vulkanMs: gpuMs, cpuMs: cpuMs, rate: rate,
                                    unit: unit, speedup: cpuMs / gpuMs)
                report.rows.append(row)
                if !json {
                    print(pad(row.summary, 60) + pad(format(gpuMs, 3), 11, right: true) + pad("\(format(rate, 1)) \(unit)", 20, right: true)
                          + pad(format(cpuMs, 3), 11, right: true) + pad("\(format(row.speedup, 2))×", 12, right: true))
                }
            }
        }
        if json { try printJSON(report) }
    }
}
