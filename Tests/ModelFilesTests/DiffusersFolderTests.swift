import Foundation
import Testing
@testable import ModelFiles

@Suite struct DiffusersFolderTests {
    static let modelIndex = """
        {
          "_class_name": "StableDiffusionPipeline",
          "_diffusers_version": "0.24.0",
          "_name_or_path": "stabilityai/sd-turbo",
          "feature_extractor": [null, null],
          "requires_safety_checker": false,
          "safety_checker": null,
          "scheduler": ["diffusers", "EulerDiscreteScheduler"],
          "text_encoder": ["transformers", "CLIPTextModel"],
          "tokenizer": ["transformers", "CLIPTokenizer"],
          "unet": ["diffusers", "UNet2DConditionModel"],
          "vae": ["diffusers", "AutoencoderKL"]
        }
        """

    private func weightsFile(_ value: Float) -> Data {
        var writer = SafeTensorsWriter()
        writer.add("w", shape: [1], floats: [value])
        return writer.data()
    }

    /// A small pipeline folder: unet with plain and fp16 files, vae with fp16 only, text encoder
    /// sharded, tokenizer without weights, scheduler config.
    private func makePipeline() throws -> TemporaryFolder {
        let folder = try TemporaryFolder()
        try folder.write("model_index.json", DiffusersFolderTests.modelIndex)
        try folder.write("unet/config.json", "{}")
        try folder.write("unet/diffusion_pytorch_model.safetensors", weightsFile(1))
        try folder.write("unet/diffusion_pytorch_model.fp16.safetensors", weightsFile(2))
        try folder.write("vae/config.json", "{}")
        try folder.write("vae/diffusion_pytorch_model.fp16.safetensors", weightsFile(3))
        try folder.write("vae/diffusion_pytorch_model.bf16.safetensors", weightsFile(4))
        try folder.write("text_encoder/config.json", "{}")
        try folder.write("text_encoder/model-00001-of-00001.safetensors", weightsFile(5))
        try folder.write("text_encoder/model.safetensors.index.json",
                         #"{"weight_map": {"w": "model-00001-of-00001.safetensors"}}"#)
        try folder.write("tokenizer/vocab.json", "{}")
        try folder.write("scheduler/scheduler_config.json", "{}")
        return folder
    }

    private func value(_ source: any WeightSource) throws -> Float? {
        try source.withBytes(of: "w") { bytes, _ in decodeF32(bytes).first }
    }

    @Test func readsModelIndex() throws {
        let folder = try makePipeline()
        let model = try DiffusersModel(folder: folder.url)
        #expect(!model.isSingleModel)
        #expect(model.pipelineClass == "StableDiffusionPipeline")
        #expect(Set(model.components.keys) == ["scheduler", "text_encoder", "tokenizer", "unet", "vae"])
        #expect(model.components["unet"] == DiffusersComponent(name: "unet", library: "diffusers", className: "UNet2DConditionModel"))
        #expect(model.absentComponents == ["feature_extractor", "safety_checker"])
        #expect(try model.folder("unet") == folder.url.appendingPathComponent("unet", isDirectory: true))
        #expect(try model.configURL("unet").lastPathComponent == "config.json")
        #expect(try model.configURL("scheduler").lastPathComponent == "scheduler_config.json")
    }

    @Test func absentAndUnknownComponents() throws {
        let folder = try makePipeline()
        let model = try DiffusersModel(folder: folder.url)
        guard case let .badConfig(_, reason)? = modelFilesError({ _ = try model.folder("safety_checker") }) else {
            Issue.record("null component"); return
        }
        #expect(reason.contains("null"))
        guard case let .badConfig(_, unknown)? = modelFilesError({ _ = try model.folder("text_encoder_2") }) else {
            Issue.record("unknown component"); return
        }
        #expect(unknown.contains("no component 'text_encoder_2'") && unknown.contains("unet"))
        try FileManager.default.removeItem(at: folder.url.appendingPathComponent("vae"))
        guard case let .badConfig(path, missing)? = modelFilesError({ _ = try model.folder("vae") }) else {
            Issue.record("missing folder"); return
        }
        #expect(path.hasSuffix("vae") && missing.contains("incomplete"))
        guard case .modelNotFound? = modelFilesError({ _ = try model.configURL("tokenizer") }) else {
            Issue.record("tokenizer has no config.json"); return
        }
    }

    @Test func variantSelectionAndFallback() throws {
        let folder = try makePipeline()
        let model = try DiffusersModel(folder: folder.url)

        let plain = try model.weightFile(component: "unet")
        #expect(plain.url.lastPathComponent == "diffusion_pytorch_model.safetensors")
        #expect(plain.variant == nil && !plain.isFallback && !plain.isSharded)
        #expect(try value(model.weights(component: "unet")) == 1)

        let fp16 = try model.weightFile(component: "unet", variant: "fp16")
        #expect(fp16.url.lastPathComponent == "diffusion_pytorch_model.fp16.safetensors" && !fp16.isFallback)
        #expect(try value(model.weights(component: "unet", variant: "fp16")) == 2)

        // Variant asked for but absent: the plain file, reported as a fallback.
        let missing = try model.weightFile(component: "unet", variant: "bf16")
        #expect(missing.variant == nil && missing.isFallback)
        #expect(missing.description == "diffusion_pytorch_model.safetensors (variant 'bf16' not found)")

        // No variant asked, only variants present: fp16 is preferred over others.
        let vae = try model.weightFile(component: "vae")
        #expect(vae.variant == "fp16" && vae.isFallback)
        #expect(try value(model.weights(component: "vae")) == 3)
        #expect(try model.weightFile(component: "vae", variant: "bf16").variant == "bf16")
    }

    @Test func shardedComponent() throws {
        let folder = try makePipeline()
        let model = try DiffusersModel(folder: folder.url)
        let choice = try model.weightFile(component: "text_encoder", variant: "fp16")
        #expect(choice.isSharded && choice.url.lastPathComponent == "model.safetensors.index.json" && choice.isFallback)
        let weights = try model.weights(component: "text_encoder")
        #expect(weights is ShardedWeights)
        #expect(try value(weights) == 5)

        try folder.write("text_encoder/model.safetensors.index.fp16.json",
                         #"{"weight_map": {"w": "model-00001-of-00001.safetensors"}}"#)
        let variant = try model.weightFile(component: "text_encoder", variant: "fp16")
        #expect(variant.isSharded && variant.variant == "fp16" && !variant.isFallback)
    }

    @Test func pickleOnlyFolderIsRefused() throws {
        let folder = try makePipeline()
        try folder.write("unet_old/config.json", "{}")
        try folder.write("unet_old/diffusion_pytorch_model.bin", Data([0x80, 0x02]))
        let model = try DiffusersModel(folder: folder.url)
        guard case let .unreadable(path, reason)? = modelFilesError({ _ = try model.weights(component: "unet_old") }) else {
            Issue.record("pickle not refused"); return
        }
        #expect(path.hasSuffix("diffusion_pytorch_model.bin"))
        #expect(reason.contains("pickle .bin weights are not supported; convert to safetensors"))
    }

    @Test func noWeightsListsWhereItLooked() throws {
        let folder = try makePipeline()
        let model = try DiffusersModel(folder: folder.url)
        guard case let .modelNotFound(_, searched, _)? = modelFilesError({ _ = try model.weightFile(component: "tokenizer", variant: "fp16") }) else {
            Issue.record("no weights"); return
        }
        #expect(searched.contains { $0.hasSuffix("tokenizer/diffusion_pytorch_model.fp16.safetensors") })
        #expect(searched.contains { $0.hasSuffix("tokenizer/model.safetensors.index.json") })
    }

    /// `madebyollin/taesd` layout: config.json and weights at the root.
    @Test func singleModelFolder() throws {
        let folder = try TemporaryFolder()
        try folder.write("config.json", #"{"_class_name": "AutoencoderTiny"}"#)
        try folder.write("diffusion_pytorch_model.safetensors", weightsFile(7))
        let model = try DiffusersModel(folder: folder.url)
        #expect(model.isSingleModel && model.components.isEmpty)
        #expect(try model.configURL(nil) == folder.url.appendingPathComponent("config.json"))
        #expect(try value(model.weights(component: nil)) == 7)
    }

    @Test func notAModelFolder() throws {
        let folder = try TemporaryFolder()
        guard case .badConfig? = modelFilesError({ _ = try DiffusersModel(folder: folder.url) }) else {
            Issue.record("empty folder accepted"); return
        }
        guard case .modelNotFound? = modelFilesError({ _ = try DiffusersModel(folder: folder.url.appendingPathComponent("none")) }) else {
            Issue.record("missing folder accepted"); return
        }
        try folder.write("model_index.json", #"{"unet": ["diffusers", "UNet2DConditionModel"], "unet": null}"#)
        guard case .badConfig? = modelFilesError({ _ = try DiffusersModel(folder: folder.url) }) else {
            Issue.record("duplicate key accepted"); return
        }
    }

    @Test func variantNamesIgnoreShards() {
        let listing = ["diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "diffusion_pytorch_model.safetensors",
                       "diffusion_pytorch_model.non_ema.safetensors", "diffusion_pytorch_model.safetensors.index.bf16.json",
                       "diffusion_pytorch_model.fp16.safetensors", "model.fp32.safetensors"]
        #expect(DiffusersModel.variants(of: "diffusion_pytorch_model", in: listing) == ["fp16", "bf16", "non_ema"])
    }
}
