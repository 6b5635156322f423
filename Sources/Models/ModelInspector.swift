import Foundation
import ModelFiles
import Tensors

/// What `streamdiffusion inspect` reports about a model folder: where it resolved to, which
/// architecture it is, and per component the files, dtypes, parameter counts and any problem —
/// including a full bind of every model by name and shape (matrix weights are checked, not read).
public struct ModelInspection: Sendable {
    public struct Component: Sendable {
        public var name: String
        public var className: String?
        public var detail: String = ""
        public var weightFile: String?
        public var tensorCount = 0
        public var parameterCount = 0
        /// Tensor count per stored dtype ("F16": 686).
        public var dtypes: [String: Int] = [:]
        public var problems: [String] = []
    }

    public var path: String
    public var origin: String
    public var architecture: String = "unknown"
    public var components: [Component] = []
    public var problems: [String] { components.flatMap { c in c.problems.map { "\(c.name): \($0)" } } }
}

public enum ModelInspector {
    /// Resolves `model` (a folder or an offline hub id) and inspects every component it has.
    public static func inspect(_ model: String, locator: ModelLocator = ModelLocator()) throws -> ModelInspection {
        let resolved = try locator.resolve(model)
        let origin: String
        switch resolved.origin {
        case .path: origin = "path"
        case let .hubCache(repo, revision, commit): origin = "Hugging Face cache: \(repo)@\(revision ?? "main") (\(commit))"
        }
        let folder = try DiffusersModel(folder: resolved.url)
        var report = ModelInspection(path: resolved.url.path, origin: origin)
        if folder.isSingleModel {
            report.components.append(inspectComponent(folder, nil, className: singleModelClass(folder)))
        } else {
            for name in folder.components.keys.sorted() {
                report.components.append(inspectComponent(folder, name, className: folder.components[name]?.className))
            }
        }
        report.architecture = architecture(of: folder)
        return report
    }

    static func singleModelClass(_ folder: DiffusersModel) -> String? {
        guard let url = try? folder.configURL(nil), let data = try? Data(contentsOf: url),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return json["_class_name"] as? String
    }

    /// The architecture, judged from the UNet (or a lone model's) config.
    static func architecture(of folder: DiffusersModel) -> String {
        if folder.isSingleModel { return singleModelClass(folder).map { "single \($0)" } ?? "single model" }
        guard let url = try? folder.configURL("unet"), let unet = try? ConfigFile.load(UNetConfig.self, from: url) else {
            return "unknown (no readable unet/config.json)"
        }
        if unet == .sd21 { return "Stable Diffusion 2.x / sd-turbo UNet" }
        if unet == .sd15 { return "Stable Diffusion 1.x UNet" }
        let style = unet.useLinearProjection ? "SD 2.x-style: linear projections" : "SD 1.x-style: conv projections"
        return "custom UNet (\(style), channels \(unet.blockOutChannels), cross-attention \(unet.crossAttentionDim))"
    }

    static func inspectComponent(_ folder: DiffusersModel, _ name: String?, className: String?) -> ModelInspection.Component {
        var c = ModelInspection.Component(name: name ?? "model", className: className)
        switch className {
        case "CLIPTokenizer", "CLIPTokenizerFast":
            do {
                let tokenizer = try CLIPTokenizer(folder: folder.folder(name))
                c.detail = "vocabulary \(tokenizer.vocabularySize), pad id \(tokenizer.padTokenID), max length \(tokenizer.maxLength)"
            } catch { c.problems.append("\(error)") }
            return c
        case let scheduler? where scheduler.hasSuffix("Scheduler"):
            c.detail = (try? folder.configURL(name).lastPathComponent) ?? ""
            return c
        default: break
        }
        let source: any WeightSource
        do {
            let choice = try folder.weightFile(component: name)
            c.weightFile = choice.description
            source = try DiffusersModel.open(choice)
        } catch {
            c.problems.append("\(error)")
            return c
        }
        c.tensorCount = source.names.count
        for tensor in source.names {
            guard let entry = source.entry(tensor) else { continue }
            c.parameterCount += Tensor.count(of: entry.shape)
            c.dtypes[entry.format.safetensorsName, default: 0] += 1
        }
        do {
            c.detail = try bind(className: className, folder: folder, name: name, source: source)
        } catch { c.problems.append("\(error)") }
        return c
    }

    /// Builds the component's model over a validating scope: every tensor must bind by name and
    /// shape, and none may be left over.
    static func bind(className: String?, folder: DiffusersModel, name: String?, source: any WeightSource) throws -> String {
        let scope = WeightScope(validating: source, backend: ReferenceBackend())
        let config = try folder.configURL(name)
        switch className {
        case "UNet2DConditionModel":
            let model = try UNet2DConditionModel(scope, config: ConfigFile.load(UNetConfig.self, from: config))
            return "UNet, \(model.config.levels) levels, heads \(try model.config.headsPerLevel()), all tensors bound"
        case "CLIPTextModel":
            let model = try CLIPTextModel(scope, config: ConfigFile.load(CLIPTextConfig.self, from: config))
            return "CLIP text encoder, \(model.config.numHiddenLayers) layers × \(model.config.hiddenSize), \(model.config.hiddenAct), all tensors bound"
        case "AutoencoderKL":
            let model = try AutoencoderKL(scope, config: ConfigFile.load(AutoencoderKLConfig.self, from: config))
            return "VAE (KL), channels \(model.config.blockOutChannels), scaling \(model.config.scalingFactor), all tensors bound"
        case "AutoencoderTiny":
            _ = try AutoencoderTiny(scope, config: ConfigFile.load(AutoencoderTinyConfig.self, from: config))
            return "tiny VAE (TAESD), all tensors bound"
        default:
            return "not checked: \(className ?? "unknown class") is not a model this engine runs"
        }
    }
}
