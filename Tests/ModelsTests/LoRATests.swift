import Foundation
import ModelFiles
import Testing
import Tensors
@testable import Models

/// LCM-LoRA-style fusing against diffusers: a rank-4, alpha-8 LoRA on every attention, projection,
/// feed-forward, resnet conv, time projection and shortcut of the tiny SD 1.5 UNet
/// (tools/make_lora_fixtures.py), saved by diffusers (alpha in the header's PEFT config) and in
/// kohya's layout (alpha tensors); references from diffusers' `fuse_lora`. Fused weights are
/// W + s·(α/r)·up·down in fp32: 1e-6 of their scale; UNet outputs: the fp32 parity tolerance, 1e-5.
@Suite struct LoRATests {
    static let folder = ModelFixtures.root.appendingPathComponent("lora")
    static let reference: SafeTensorsFile? = try? SafeTensorsFile(url: folder.appendingPathComponent("tiny-sd15-lora-reference.safetensors"))

    func fused(_ file: String, scale: Float) throws -> LoRAFusedWeights {
        let base = try ModelFixtures.weights("tiny-sd15", "unet", "diffusion_pytorch_model.safetensors")
        let lora = try LoRAFile(SafeTensorsFile(url: LoRATests.folder.appendingPathComponent(file)))
        return try LoRAFusedWeights(base: base, lora: lora, scale: scale, threads: 2)
    }

    @Test(arguments: ["tiny-sd15-lora-diffusers.safetensors", "tiny-sd15-lora-kohya.safetensors"])
    func fusesLikeDiffusers(file: String) throws {
        let reference = try #require(LoRATests.reference)
        let backend = ModelFixtures.fp32
        let weights = try fused(file, scale: 1)
        #expect(weights.unmatched.isEmpty)
        #expect(weights.fusedWeightNames.count == 193)
        #expect(weights.lora.layout == (file.contains("kohya") ? .kohya : .diffusers))
        for key in reference.names where key.hasPrefix("fused_") {
            let name = String(key.dropFirst(6))
            let fusedWeight = try weights.tensor(name, on: backend)
            try expectMatches(fusedWeight, reference, key, on: backend, relative: 1e-6, "\(file): \(name)")
        }
        let inputs = try ModelFixtures.activations("tiny-sd15-unet")
        let config = try ModelFixtures.config(UNetConfig.self, "tiny-sd15", "unet")
        for (scale, key) in [(Float(1), "output_scale_1"), (0.5, "output_scale_0_5")] {
            let unet = try UNet2DConditionModel(WeightScope(source: fused(file, scale: scale), backend: backend), config: config)
            let out = try unet(inputs.tensor("sample", on: backend), timesteps: backend.floats(inputs.tensor("timesteps", on: backend)),
                               context: inputs.tensor("encoder_hidden_states", on: backend))
            try expectMatches(out, reference, key, on: backend, relative: 1e-5, "\(file) at scale \(scale)")
        }
    }

    @Test func reportsUnmatchedModules() throws {
        let weights = try fused("tiny-sd15-lora-unmatched.safetensors", scale: 1)
        #expect(weights.unmatched == ["lora_unet_down_blocks_9_nonexistent"])
        #expect(weights.fusedWeightNames.count == 193)
    }

    @Test func rejectsFilesThatAreNotLoRAs() throws {
        let notLoRA = try ModelFixtures.weights("tiny-sd15", "unet", "diffusion_pytorch_model.safetensors")
        #expect(throws: ModelFilesError.self) { try LoRAFile(notLoRA) }
        let halfPair = InMemoryWeights(location: "half.safetensors")
        halfPair.set("lora_unet_conv_in.lora_down.weight", shape: [1, 4], values: [1, 2, 3, 4])
        #expect(throws: ModelFilesError.self) { try LoRAFile(halfPair) }
    }
}
