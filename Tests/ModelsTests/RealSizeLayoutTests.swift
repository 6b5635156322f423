import Foundation
import ModelFiles
import Testing
import Tensors
@testable import Models

/// The real architectures at full size, without real weights: the layouts exported from
/// diffusers/transformers (Tests/Fixtures/layouts, every tensor name and shape of sd-turbo's UNet
/// and text encoder, the SD VAE and TAESD) are written as fp16 safetensors with random values,
/// loaded through the normal loader — which fails on any missing, misshaped or unused tensor —
/// and run once at a small size. Outputs of random weights have no reference: the checks are that
/// every tensor binds and the forward pass produces finite, non-constant values of the right shape.
@Suite(.serialized) struct RealSizeLayoutTests {
    static let layouts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/layouts")

    /// Writes the layout as `<temp>/<name>/<weights>` and opens it like a downloaded model folder.
    func materialise(_ name: String, weights: String) throws -> (folder: URL, source: SafeTensorsFile, parameters: Int) {
        let layout = try ModelLayout(contentsOf: RealSizeLayoutTests.layouts.appendingPathComponent("\(name).json"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sd-layout-\(getpid())-\(name)")
        try layout.write(to: folder, weightsName: weights)
        return (folder, try SafeTensorsFile(url: folder.appendingPathComponent(weights)), layout.parameterCount)
    }

    func expectSane(_ t: Tensor, _ shape: [Int], on backend: any Backend, _ what: String) throws {
        #expect(t.shape == shape, "\(what) shape")
        let values = try backend.floats(t)
        let finite = values.allSatisfy { $0.isFinite }
        #expect(finite, "\(what): non-finite values")
        #expect((values.max() ?? 0) > (values.min() ?? 0), "\(what): constant output")
    }

    var backend: CPUBackend { ModelFixtures.bf16 ?? ModelFixtures.fp32 }

    @Test func sdTurboUNetBindsAndRuns() throws {
        let (folder, source, parameters) = try materialise("sd-turbo-unet", weights: "diffusion_pytorch_model.fp16.safetensors")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(parameters == 865_910_724)
        let config = try ConfigFile.load(UNetConfig.self, from: folder.appendingPathComponent("config.json"))
        #expect(try config.headsPerLevel() == (try UNetConfig.sdTurbo.headsPerLevel()))
        let unet = try UNet2DConditionModel(WeightScope(source: source, backend: backend), config: config)
        let sample = try backend.tensor((0..<(8 * 8 * 4)).map { Float($0 % 7) / 7 - 0.5 }, shape: [1, 8, 8, 4])
        let context = try backend.tensor([Float](repeating: 0.1, count: 77 * 1024), shape: [1, 77, 1024])
        try expectSane(unet(sample, timesteps: [999], context: context), [1, 8, 8, 4], on: backend, "sd-turbo UNet")
    }

    @Test func sdTurboTextEncoderBindsAndRuns() throws {
        let (folder, source, _) = try materialise("sd-turbo-text-encoder", weights: "model.fp16.safetensors")
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try ConfigFile.load(CLIPTextConfig.self, from: folder.appendingPathComponent("config.json"))
        #expect(config == CLIPTextConfig.sdTurbo)
        let encoder = try CLIPTextModel(WeightScope(source: source, backend: backend), config: config)
        let ids = [49406, 320, 1125, 539, 320, 2368, 49407] + [Int](repeating: 0, count: 70)
        try expectSane(encoder([ids]), [1, 77, 1024], on: backend, "sd-turbo text encoder")
    }

    @Test func autoencodersBindAndRun() throws {
        let (vaeFolder, vaeSource, _) = try materialise("sd-vae", weights: "diffusion_pytorch_model.fp16.safetensors")
        defer { try? FileManager.default.removeItem(at: vaeFolder) }
        let vae = try AutoencoderKL(WeightScope(source: vaeSource, backend: backend),
                                    config: ConfigFile.load(AutoencoderKLConfig.self, from: vaeFolder.appendingPathComponent("config.json")))
        let latents = try backend.tensor((0..<(4 * 4 * 4)).map { Float($0 % 5) / 5 }, shape: [1, 4, 4, 4])
        try expectSane(vae.decode(latents), [1, 32, 32, 3], on: backend, "SD VAE decode")
        let image = try backend.tensor((0..<(32 * 32 * 3)).map { Float($0 % 11) / 11 - 0.5 }, shape: [1, 32, 32, 3])
        try expectSane(vae.encode(image), [1, 4, 4, 4], on: backend, "SD VAE encode")

        let (tinyFolder, tinySource, _) = try materialise("taesd", weights: "diffusion_pytorch_model.fp16.safetensors")
        defer { try? FileManager.default.removeItem(at: tinyFolder) }
        let taesd = try AutoencoderTiny(WeightScope(source: tinySource, backend: backend),
                                        config: ConfigFile.load(AutoencoderTinyConfig.self, from: tinyFolder.appendingPathComponent("config.json")))
        try expectSane(taesd.decode(latents), [1, 32, 32, 3], on: backend, "TAESD decode")
        try expectSane(taesd.encode(image), [1, 4, 4, 4], on: backend, "TAESD encode")
    }
}
