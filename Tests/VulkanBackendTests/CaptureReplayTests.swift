import Foundation
import ModelFiles
import Models
import Testing
import Tensors
@testable import VulkanBackend

/// Work recorded once and replayed: the same shaders on the same data, so a replay must equal the
/// eager ops exactly (bit for bit), with new inputs written in place, and eager work in between
/// must neither disturb the replay's buffers nor be disturbed by them.
@Suite(.serialized) struct CaptureReplayTests {
    @Test func replayEqualsEagerOpsOnNewInputs() throws {
        try withVulkan { vk in
            let x = try vk.tensor((0..<96).map { Float($0) / 10 - 4 }, shape: [2, 48])
            func ops(_ x: Tensor) throws -> Tensor { try vk.softmax(vk.add(vk.activation(vk.scale(x, by: 2, adding: 1), .silu), x)) }
            let (replay, y) = try vk.capture { try ops(x) }
            #expect(replay.commandCount == 4)
            for k in 0..<3 {
                let values = (0..<96).map { Float(sin(Double($0 * (k + 1)))) * 3 }
                try vk.write(values, into: x)
                try replay.run()
                let eager = try vk.floats(ops(vk.tensor(values, shape: [2, 48])))
                let replayed = try vk.floats(y)
                #expect(replayed == eager, "replay \(k)")
            }
        }
    }

    @Test func replayedUNetEqualsTheEagerUNet() throws {
        try withVulkan { vk in
            let root = VulkanModelParityTests.root
            let unet = try UNet2DConditionModel(
                WeightScope(source: SafeTensorsFile(url: root.appendingPathComponent("tiny-sd15/unet/diffusion_pytorch_model.safetensors")), backend: vk),
                config: ConfigFile.load(UNetConfig.self, from: root.appendingPathComponent("tiny-sd15/unet/config.json")))
            let reference = try SafeTensorsFile(url: root.appendingPathComponent("activations/tiny-sd15-unet.safetensors"))
            let context = try reference.tensor("encoder_hidden_states", on: vk)
            let sample = try reference.tensor("sample", on: vk)
            let timesteps = try vk.floats(reference.tensor("timesteps", on: vk))
            let input = try vk.convert(sample, to: .float32)   // the replay's input, rewritten per frame
            let (replay, out) = try vk.capture { try unet(input, timesteps: timesteps, context: context) }
            #expect(replay.commandCount > 50)
            var rng = SeededRandom(seed: 21)
            for k in 0..<2 {
                let values = rng.floats(sample.count)
                try vk.write(values, into: input)
                try replay.run()
                // Eager work between replays allocates from the pool: it must not touch the replay's buffers.
                let eager = try vk.floats(unet(vk.tensor(values, shape: sample.shape), timesteps: timesteps, context: context))
                let replayed = try vk.floats(out)
                #expect(replayed == eager, "frame \(k)")
            }
            // The first capture input: the parity reference still holds after replays.
            try vk.copy(sample, into: input)
            try replay.run()
            expectClose(try vk.floats(out), try vk.floats(reference.tensor("output", on: vk)), relative: 1e-4, "replayed unet vs PyTorch")
        }
    }

    @Test func hostReadsAndNestingInsideACaptureAreErrors() throws {
        try withVulkan { vk in
            let x = try vk.tensor([1, 2, 3], shape: [3])
            #expect(throws: VulkanError.self) { try vk.capture { try vk.floats(vk.activation(x, .tanh)) } }
            #expect(throws: VulkanError.self) { try vk.capture { try vk.synchronize() } }
            #expect(throws: VulkanError.self) { try vk.capture { try vk.capture { try vk.activation(x, .tanh) } } }
            // The backend works normally afterwards.
            let tanh = try vk.floats(vk.activation(x, .tanh))
            #expect(zip(tanh, [1, 2, 3].map { Float(Foundation.tanh(Double($0))) }).allSatisfy { abs($0 - $1) < 1e-6 })
            #expect(throws: TensorError.self) { try vk.write([1, 2], into: x) }
        }
    }
}
