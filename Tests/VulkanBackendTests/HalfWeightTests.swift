import Foundation
import ModelFiles
import Models
import Testing
import Tensors
@testable import VulkanBackend

/// fp16 weight storage (`weightStorage: .float16`): the packing rounds exactly as Swift's Float16
/// (nearest, ties to even, subnormals, overflow), and products on packed weights equal the fp32
/// path on the rounded weights — so fp16 model files lose nothing.
@Suite(.serialized) struct HalfWeightTests {
    static let half: Result<VulkanBackend, Error> = Result { try VulkanBackend(options: .init(validation: true, weightStorage: .float16, cooperativeMatrix: .off)) }

    func withHalf(_ body: (VulkanBackend) throws -> Void) throws {
        let vk = try Self.half.get()
        try body(vk)
        try vk.synchronize()
        let messages = vk.validationMessages
        if !messages.isEmpty { _ = try? vk.checkValidation() }
        #expect(messages.isEmpty, "validation layer: \(messages.joined(separator: " | "))")
    }

    @Test func packingRoundsLikeSwiftFloat16() throws {
        try withHalf { vk in
            let tiny = Float(Float16.leastNonzeroMagnitude)   // 2^-24
            var values: [Float] = [0, -0.0, 1, -2, 65504, 65519, 65520, 1e6, -1e6, .infinity, -.infinity, 1e-8,
                                   tiny, tiny / 2, 1.5 * tiny, 2.5 * tiny, 3 * tiny / 2, Float(Float16.leastNormalMagnitude),
                                   Float(Float16.leastNormalMagnitude) * (1 - 1 / 2048), 1 + 1 / 2048, 1 + 3 / 2048, 0.1, 1 / 3]
            var rng = SeededRandom(seed: 31)
            values += rng.floats(200, scale: 100) + rng.floats(200, scale: 1e-4) + [.nan]
            let x = try vk.tensor(values, shape: [values.count])
            let packed = try vk.lock.withLock { try vk.deviceWeight(x, "test") }
            #expect(packed.half)
            var words = [UInt32](repeating: 0, count: (values.count + 1) / 2)
            try vk.lock.withLock {
                try words.withUnsafeMutableBytes { try vk.stream.download(from: packed.storage.raw.buffer, at: 0, bytes: $0.count, into: $0) }
            }
            for (i, v) in values.enumerated() {
                let bits = UInt16(truncatingIfNeeded: words[i / 2] >> (16 * UInt32(i % 2)))
                if v.isNaN { #expect(Float16(bitPattern: bits).isNaN); continue }
                #expect(bits == Float16(v).bitPattern, "\(v): \(String(bits, radix: 16)) vs \(String(Float16(v).bitPattern, radix: 16))")
            }
        }
    }

    /// Products on packed weights against the CPU on the same weights rounded to fp16: 1e-4.
    @Test func convolutionAndLinearOnHalfWeights() throws {
        let cpu = Backends.cpu
        try withHalf { vk in
            var rng = SeededRandom(seed: 32)
            func rounded(_ v: [Float]) -> [Float] { v.map { Float(Float16($0)) } }
            for trial in 0..<4 {
                let n = rng.int(1...2), h = rng.int(3...8), w = rng.int(3...8), ci = rng.int(1...7), co = rng.int(1...35)
                let k = trial % 2 == 0 ? 3 : 1
                let geometry = Conv2dGeometry(stride: trial == 2 ? 2 : 1, padding: k == 3 ? 1 : 0)
                let xv = rng.floats(n * h * w * ci), wv = rng.floats(co * ci * k * k, scale: 0.5), bv = rng.floats(co)
                let wg = try vk.prepareConv2d(weight: vk.tensor(wv, shape: [co, ci, k, k]), bias: vk.tensor(bv, shape: [co]), geometry: geometry)
                let wc = try cpu.prepareConv2d(weight: cpu.tensor(rounded(wv), shape: [co, ci, k, k]), bias: cpu.tensor(bv, shape: [co]), geometry: geometry)
                let yg = try vk.conv2d(vk.tensor(xv, shape: [n, h, w, ci]), wg, addend: nil, fusedReLU: trial == 1, outputDType: .float32)
                let yc = try cpu.conv2d(cpu.tensor(xv, shape: [n, h, w, ci]), wc, addend: nil, fusedReLU: trial == 1, outputDType: .float32)
                expectClose(try vk.floats(yg), try cpu.floats(yc), relative: 1e-4, "fp16-weight conv2d trial \(trial)")

                let rows = rng.int(1...30), inF = rng.int(1...50), outF = rng.int(1...40)   // odd counts: a half-filled last word
                let lv = rng.floats(outF * inF), lx = rng.floats(rows * inF), lb = rng.floats(outF)
                let lg = try vk.prepareLinear(weight: vk.tensor(lv, shape: [outF, inF]), bias: vk.tensor(lb, shape: [outF]))
                let lc = try cpu.prepareLinear(weight: cpu.tensor(rounded(lv), shape: [outF, inF]), bias: cpu.tensor(lb, shape: [outF]))
                expectClose(try vk.floats(vk.linear(vk.tensor(lx, shape: [rows, inF]), lg)),
                            try cpu.floats(cpu.linear(cpu.tensor(lx, shape: [rows, inF]), lc)), relative: 1e-4, "fp16-weight linear \(rows)x\(inF)->\(outF)")
            }
        }
    }

    /// An fp16 model file loses nothing: fp16 storage gives exactly the fp32-storage result.
    @Test func fp16FilesAreLosslessInHalfStorage() throws {
        let root = VulkanModelParityTests.root
        let full = try Backends.vulkan()
        try withHalf { half in
            var outputs: [[Float]] = []
            for vk in [full, half] {
                let unet = try UNet2DConditionModel(
                    WeightScope(source: SafeTensorsFile(url: root.appendingPathComponent("tiny-sd15/unet/diffusion_pytorch_model.fp16.safetensors")), backend: vk),
                    config: ConfigFile.load(UNetConfig.self, from: root.appendingPathComponent("tiny-sd15/unet/config.json")))
                let reference = try SafeTensorsFile(url: root.appendingPathComponent("activations/tiny-sd15-unet.safetensors"))
                let out = try unet(reference.tensor("sample", on: vk), timesteps: vk.floats(reference.tensor("timesteps", on: vk)),
                                   context: reference.tensor("encoder_hidden_states", on: vk))
                outputs.append(try vk.floats(out))
            }
            #expect(outputs[0] == outputs[1])
            #expect(half.description.contains("fp16 weights"))
        }
    }
}
