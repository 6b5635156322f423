import Foundation
import ModelFiles
import Models
import StreamDiffusion
import Testing
import Tensors
@testable import VulkanBackend

/// A short stream (tiny SD 1.5 UNet and text encoder, tiny TAESD, 64×64 frames) run on Vulkan and
/// on the fp32 CPU backend with the same parameters: every frame must agree to 1e-4 of its scale.
@Suite(.serialized) struct StreamParityTests {
    /// CLIP's byte-level alphabet with BOS/EOS at 998/999, the ids the tiny text encoder knows (the
    /// same construction as Tests/StreamDiffusionTests/StreamPipelineTests.swift).
    static func tokenizer() throws -> CLIPTokenizer {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var symbols: [String] = [], shifted = 256
        for byte in 0..<256 {
            let code = printable.contains(byte) ? byte : { defer { shifted += 1 }; return shifted }()
            guard let scalar = Unicode.Scalar(UInt32(code)) else { throw TensorError.invalidArgument(op: "tokenizer", message: "code \(code)") }
            symbols.append(String(Character(scalar)))
        }
        let order = (0..<256).filter { printable.contains($0) } + (0..<256).filter { !printable.contains($0) }
        var vocabulary: [String: Int] = ["<|startoftext|>": 998, "<|endoftext|>": 999]
        for (id, byte) in order.enumerated() {
            vocabulary[symbols[byte]] = id
            vocabulary[symbols[byte] + "</w>"] = 256 + id
        }
        return try CLIPTokenizer(vocabulary: vocabulary, merges: [], padTokenID: 999)
    }

    static func pipeline(on backend: any Backend, cfg: CFGType) throws -> StreamPipeline {
        let root = VulkanModelParityTests.root
        let sd = root.appendingPathComponent("tiny-sd15")
        func weights(_ path: String) throws -> WeightScope {
            WeightScope(source: try SafeTensorsFile(url: root.appendingPathComponent(path)), backend: backend)
        }
        let text = try CLIPTextModel(weights("tiny-sd15/text_encoder/model.safetensors"),
                                     config: ConfigFile.load(CLIPTextConfig.self, from: sd.appendingPathComponent("text_encoder/config.json")))
        let unet = try UNet2DConditionModel(weights("tiny-sd15/unet/diffusion_pytorch_model.safetensors"),
                                            config: ConfigFile.load(UNetConfig.self, from: sd.appendingPathComponent("unet/config.json")))
        let taesd = try AutoencoderTiny(weights("tiny-taesd/diffusion_pytorch_model.safetensors"),
                                        config: ConfigFile.load(AutoencoderTinyConfig.self, from: root.appendingPathComponent("tiny-taesd/config.json")))
        let scheduler = try LCMScheduler(contentsOf: sd.appendingPathComponent("scheduler/scheduler_config.json"))
        var p = StreamParameters()
        (p.width, p.height, p.tIndexList, p.cfgType, p.guidanceScale, p.seed) = (64, 64, [20, 40], cfg, 1.4, 3)
        return try StreamPipeline(tokenizer: tokenizer(), textEncoder: text, unet: unet, vae: .tiny(taesd), scheduler: scheduler,
                                  parameters: p, backend: backend)
    }

    static func frame(_ k: Int, on backend: any Backend) throws -> Tensor {
        let values = (0..<(64 * 64 * 3)).map { i in Float(sin(Double(i * (k + 3)) * 0.01)) }
        return try backend.tensor(values, shape: [1, 64, 64, 3])
    }

    @Test(arguments: [CFGType.none, .self])
    func streamMatchesTheCPU(cfg: CFGType) throws {
        try withVulkan { vk in
            let cpu = Backends.cpu
            let onVulkan = try Self.pipeline(on: vk, cfg: cfg), onCPU = try Self.pipeline(on: cpu, cfg: cfg)
            try onVulkan.prepare(prompt: "a red circle", negativePrompt: "blur")
            try onCPU.prepare(prompt: "a red circle", negativePrompt: "blur")
            for k in 0..<3 {
                let v = try onVulkan.img2img(Self.frame(k, on: vk)), c = try onCPU.img2img(Self.frame(k, on: cpu))
                #expect(v.shape == c.shape)
                expectClose(try vk.floats(v), try cpu.floats(c), relative: 1e-4, "stream frame \(k) cfg \(cfg)")
            }
            expectClose(try vk.floats(onVulkan.txt2img()), try cpu.floats(onCPU.txt2img()), relative: 1e-4, "txt2img cfg \(cfg)")
        }
    }

    /// A whole frame's fixed work replayed (TAESD encode, the UNet call, TAESD decode; the default
    /// on Vulkan) gives exactly what running it op by op gives, and a picture handed out stays what
    /// it was when later frames replay the decoder.
    @Test func replayedFramesEqualEagerOnes() throws {
        try withVulkan { vk in
            let replaying = try Self.pipeline(on: vk, cfg: .self), eager = try Self.pipeline(on: vk, cfg: .self)
            eager.recordingEnabled = false
            for stream in [replaying, eager] { try stream.prepare(prompt: "a red circle", negativePrompt: "") }
            var first: (tensor: Tensor, values: [Float])?
            for k in 0..<4 {
                // Odd frames go through the server's path (several streams' API, here one stream),
                // which must replay as well.
                let r = k % 2 == 0 ? try replaying.img2img(Self.frame(k, on: vk))
                    : try StreamPipeline.img2img([(replaying, Self.frame(k, on: vk))])[0]
                let e = try eager.img2img(Self.frame(k, on: vk))
                #expect(try vk.floats(r) == vk.floats(e), "frame \(k)")
                if k == 1 { first = (r, try vk.floats(r)) }
            }
            #expect(try vk.floats(replaying.txt2img()) == vk.floats(eager.txt2img()), "txt2img")
            if let first { #expect(try vk.floats(first.tensor) == first.values, "frame 1's picture was overwritten") }
            // Frames 0-3: encode and decode each recorded once, then replayed 3 times; txt2img's
            // decode (same shape) is one more replay.
            #expect(replaying.replayedVAECalls == 7, "\(replaying.replayedVAECalls) replays")
            #expect(eager.replayedVAECalls == 0)
            // The UNet call: recorded at frame 0, replayed at frames 1-3 and by txt2img (2 steps:
            // the same stream-batch call).
            #expect(replaying.replayedUNetCalls == 4 && eager.replayedUNetCalls == 0, "\(replaying.replayedUNetCalls) UNet replays")
        }
    }

    /// The stream's UNet call recorded once and replayed (the default on Vulkan) gives exactly what
    /// running it op by op gives, frame after frame and across a prompt change.
    @Test(arguments: [CFGType.`self`, CFGType.full])
    func replayedUNetCallsEqualEagerOnes(cfg: CFGType) throws {
        try withVulkan { vk in
            let root = VulkanModelParityTests.root
            let unet = try UNet2DConditionModel(
                WeightScope(source: SafeTensorsFile(url: root.appendingPathComponent("tiny-sd15/unet/diffusion_pytorch_model.safetensors")), backend: vk),
                config: ConfigFile.load(UNetConfig.self, from: root.appendingPathComponent("tiny-sd15/unet/config.json")))
            let scheduler = try LCMScheduler(contentsOf: root.appendingPathComponent("tiny-sd15/scheduler/scheduler_config.json"))
            let schedule = try StreamSchedule(scheduler: scheduler, timesteps: [999, 659, 259])
            let reference = try SafeTensorsFile(url: root.appendingPathComponent("activations/tiny-sd15-unet.safetensors"))
            let contexts = try reference.tensor("encoder_hidden_states", on: vk)
            var rng = SeededRandom(seed: 41)
            let noise = try vk.tensor(rng.floats(3 * 8 * 8 * 4), shape: [3, 8, 8, 4])
            let streams = try (0..<2).map { _ in
                try StreamBatch(predictor: unet, schedule: schedule, cfg: cfg, guidanceScale: 1.5, initNoise: noise, backend: vk)
            }
            streams[1].recordingEnabled = false
            #expect(streams[0].replaysUNet && !streams[1].replaysUNet)
            for stream in streams { try stream.setPrompt(positive: contexts.slice(batch: 0..<1), negative: contexts.slice(batch: 1..<2)) }
            let frames = try (0..<5).map { _ in try vk.tensor(rng.floats(8 * 8 * 4), shape: [1, 8, 8, 4]) }
            for (k, frame) in frames.enumerated() {
                if k == 3 {   // a new prompt: recorded again
                    for stream in streams { try stream.setPrompt(positive: contexts.slice(batch: 1..<2), negative: contexts.slice(batch: 0..<1)) }
                }
                let replayed = try vk.floats(streams[0](frame)), eager = try vk.floats(streams[1](frame))
                #expect(replayed == eager, "frame \(k) cfg \(cfg)")
            }
            #expect(streams[0].replayedUNetCalls == 1, "frames 3 and 4: one recording, one replay")
            #expect(streams[1].replayedUNetCalls == 0)
        }
    }
}
