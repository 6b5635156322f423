import Foundation
import ModelFiles
import Tensors

/// The components of a Stable Diffusion folder, loaded onto a backend: tokenizer, text encoder,
/// UNet (optionally with a LoRA fused in) and a VAE (the folder's own, or a separately named TAESD).
public struct StableDiffusionModel: Sendable {
    public enum VAE: Sendable {
        case kl(AutoencoderKL)
        case tiny(AutoencoderTiny)
    }

    public let folder: DiffusersModel
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    /// The picture size the model was trained at: 8 × the UNet's `sample_size` (diffusers' default
    /// height and width; 64 when the config lacks it).
    public var nativeSize: Int { (unet.config.sampleSize ?? 64) * 8 }
    public let vae: VAE
    /// LoRA modules that matched no UNet weight (empty without a LoRA).
    public let unmatchedLoRAModules: [String]

    /// - model: a folder or an offline hub id (`ModelLocator`).
    /// - tinyVAE: a TAESD folder or hub id (e.g. `madebyollin/taesd`) used instead of the folder's VAE.
    /// - lora: a LoRA safetensors file fused into the UNet at `loraScale`.
    public static func load(_ model: String, backend: any Backend, tinyVAE: String? = nil, lora: URL? = nil,
                            loraScale: Float = 1, variant: String? = "fp16",
                            locator: ModelLocator = ModelLocator()) throws -> StableDiffusionModel {
        let folder = try DiffusersModel(folder: locator.resolve(model).url)
        func scope(_ component: String?, in f: DiffusersModel = folder) throws -> WeightScope {
            WeightScope(source: try f.weights(component: component, variant: variant), backend: backend)
        }
        let tokenizer = try CLIPTokenizer(folder: folder.folder("tokenizer"))
        let textEncoder = try CLIPTextModel(scope("text_encoder"),
                                            config: ConfigFile.load(CLIPTextConfig.self, from: folder.configURL("text_encoder")))
        var unetWeights: any WeightSource = try folder.weights(component: "unet", variant: variant)
        var unmatched: [String] = []
        if let lora {
            let fused = try LoRAFusedWeights(base: unetWeights, lora: LoRAFile(SafeTensorsFile(url: lora)), scale: loraScale)
            unmatched = fused.unmatched
            unetWeights = fused
        }
        let unet = try UNet2DConditionModel(WeightScope(source: unetWeights, backend: backend),
                                            config: ConfigFile.load(UNetConfig.self, from: folder.configURL("unet")))
        let vae: VAE
        if let tinyVAE {
            let tiny = try DiffusersModel(folder: locator.resolve(tinyVAE).url)
            vae = .tiny(try AutoencoderTiny(scope(nil, in: tiny),
                                            config: ConfigFile.load(AutoencoderTinyConfig.self, from: tiny.configURL(nil))))
        } else if folder.components["vae"]?.className == "AutoencoderTiny" {
            vae = .tiny(try AutoencoderTiny(scope("vae"), config: ConfigFile.load(AutoencoderTinyConfig.self, from: folder.configURL("vae"))))
        } else {
            vae = .kl(try AutoencoderKL(scope("vae"), config: ConfigFile.load(AutoencoderKLConfig.self, from: folder.configURL("vae"))))
        }
        return StableDiffusionModel(folder: folder, tokenizer: tokenizer, textEncoder: textEncoder, unet: unet, vae: vae,
                                    unmatchedLoRAModules: unmatched)
    }
}
