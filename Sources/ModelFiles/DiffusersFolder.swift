import Foundation

/// One entry of `model_index.json`: `"unet": ["diffusers", "UNet2DConditionModel"]`.
public struct DiffusersComponent: Sendable, Equatable {
    public let name: String
    public let library: String
    public let className: String
}

/// Which weight file was picked for a component, so tools (`inspect`) can say so.
public struct WeightFileChoice: Sendable, Equatable, CustomStringConvertible {
    /// The `.safetensors` file, or the `.safetensors.index.json` of a sharded checkpoint.
    public let url: URL
    public let isSharded: Bool
    /// The variant infix of the chosen file (`"fp16"`), nil for the plain file.
    public let variant: String?
    /// The variant that was asked for.
    public let requestedVariant: String?

    /// True when the file is not the requested variant (absent, so another was used).
    public var isFallback: Bool { variant != requestedVariant }

    public var description: String {
        var text = url.lastPathComponent
        if isFallback {
            let asked = requestedVariant.map { "variant '\($0)'" } ?? "plain weights"
            text += " (\(asked) not found)"
        }
        return text
    }
}

/// A diffusers model folder: either a pipeline (`model_index.json` plus one subfolder per
/// component: `unet/`, `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`, …) or a single model
/// (`config.json` + `diffusion_pytorch_model.safetensors` at the root, like `madebyollin/taesd`).
///
/// A component is addressed by its name; `nil` addresses the root (the model itself for a
/// single-model folder). Nothing is read but `model_index.json` until asked.
public struct DiffusersModel: Sendable {
    public let root: URL
    /// Components with a class, by name (underscore keys such as `_class_name` are skipped).
    public let components: [String: DiffusersComponent]
    /// Components that `model_index.json` sets to null (`"safety_checker": [null, null]`).
    public let absentComponents: Set<String>
    /// The pipeline class (`_class_name`), when the folder is a pipeline.
    public let pipelineClass: String?
    /// True for a single-model folder (no `model_index.json`, a `config.json` at the root).
    public let isSingleModel: Bool

    /// Base names of weight files, in the order they are tried.
    public static let weightBaseNames = ["diffusion_pytorch_model", "model"]

    /// Opens `folder`. Throws `modelNotFound` when it is not a folder, `badConfig` when it has
    /// neither `model_index.json` nor `config.json` or its `model_index.json` is malformed.
    public init(folder: URL) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelFilesError.modelNotFound(id: folder.path, searched: [folder.path],
                                                hint: "pass a diffusers folder (with model_index.json or config.json)")
        }
        root = folder
        let index = folder.appendingPathComponent("model_index.json")
        if fm.fileExists(atPath: index.path) {
            let parsed = try DiffusersModel.parseModelIndex(JSONReader.readSmallFile(index), path: index.path)
            (components, absentComponents, pipelineClass) = (parsed.components, parsed.absent, parsed.className)
            isSingleModel = false
        } else if fm.fileExists(atPath: folder.appendingPathComponent("config.json").path) {
            (components, absentComponents, pipelineClass, isSingleModel) = ([:], [], nil, true)
        } else {
            throw ModelFilesError.badConfig(path: folder.path,
                                            reason: "not a diffusers folder: no model_index.json (pipeline) or config.json (single model)")
        }
    }

    /// Parses `model_index.json`: component → `[library, class]`. Keys starting with `_` are
    /// metadata; values that are not two-element arrays are pipeline options
    /// (`"requires_safety_checker": true`) and skipped; `null` or `[null, null]` marks an absent
    /// component.
    public static func parseModelIndex(_ data: Data, path: String)
        throws -> (components: [String: DiffusersComponent], absent: Set<String>, className: String?) {
        var components: [String: DiffusersComponent] = [:]
        var absent = Set<String>()
        var className: String?
        var seen = Set<String>()
        try JSONReader.parseDocument(data, path: path) { reader in
            guard try reader.peekKind() == .object else {
                throw ModelFilesError.badConfig(path: path, reason: "model_index.json is not a JSON object")
            }
            try reader.readObject { key in
                guard seen.insert(key).inserted else {
                    throw ModelFilesError.badConfig(path: path, reason: "key '\(key)' appears twice")
                }
                if key.hasPrefix("_") {
                    if key == "_class_name", try reader.peekKind() == .string { className = try reader.readString() }
                    else { try reader.skipValue() }
                    return
                }
                switch try reader.peekKind() {
                case .null:
                    try reader.readNull()
                    absent.insert(key)
                case .array:
                    var items: [String?] = []
                    var plain = true
                    try reader.readArray {
                        switch try reader.peekKind() {
                        case .string: items.append(try reader.readString())
                        case .null: try reader.readNull(); items.append(nil)
                        default: try reader.skipValue(); plain = false
                        }
                    }
                    guard plain, items.count == 2 else { return }   // an option, not a component
                    if let library = items[0], let name = items[1] {
                        components[key] = DiffusersComponent(name: key, library: library, className: name)
                    } else {
                        absent.insert(key)
                    }
                default:
                    try reader.skipValue()
                }
            }
        }
        return (components, absent, className)
    }

    // MARK: folders and configs

    /// The folder of `component` (nil: the root). Throws `badConfig` saying why when the
    /// component is absent, unknown or not downloaded. A subfolder that exists is served even
    /// when `model_index.json` does not list it (e.g. a tiny VAE added by hand).
    public func folder(_ component: String?) throws -> URL {
        guard let component else { return root }
        let url = root.appendingPathComponent(component, isDirectory: true)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return url
        }
        let indexPath = root.appendingPathComponent("model_index.json").path
        if absentComponents.contains(component) {
            throw ModelFilesError.badConfig(path: indexPath, reason: "component '\(component)' is null: this pipeline has none")
        }
        if components[component] != nil {
            throw ModelFilesError.badConfig(path: url.path,
                                            reason: "folder missing although model_index.json lists '\(component)'; the download may be incomplete")
        }
        let known = components.keys.sorted().joined(separator: ", ")
        throw ModelFilesError.badConfig(path: isSingleModel ? root.path : indexPath,
                                        reason: "no component '\(component)'" + (known.isEmpty ? "" : "; components: \(known)"))
    }

    /// The component's `config.json` (or `scheduler_config.json` for schedulers).
    public func configURL(_ component: String?) throws -> URL {
        let folder = try folder(component)
        let candidates = ["config.json", "scheduler_config.json"].map { folder.appendingPathComponent($0) }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
        throw ModelFilesError.modelNotFound(id: folder.path, searched: candidates.map(\.path),
                                            hint: "the folder has no config file; the download may be incomplete")
    }

    // MARK: weights

    /// Opens the weights of `component` (see `weightFile` for which file).
    public func weights(component: String?, variant: String? = nil,
                        baseNames: [String] = DiffusersModel.weightBaseNames) throws -> any WeightSource {
        try DiffusersModel.open(weightFile(component: component, variant: variant, baseNames: baseNames))
    }

    /// Opens a chosen weight file: one safetensors file, or a sharded checkpoint by its index.
    public static func open(_ choice: WeightFileChoice) throws -> any WeightSource {
        choice.isSharded ? try ShardedWeights(indexURL: choice.url) : try SafeTensorsFile(url: choice.url)
    }

    /// Picks the weight file of `component`. For each base name (`diffusion_pytorch_model`, then
    /// `model`), tried in this order: the requested variant (`<base>.<variant>.safetensors`, or
    /// its sharded index `<base>.safetensors.index.<variant>.json`), the plain file
    /// (`<base>.safetensors`, `<base>.safetensors.index.json`), then any other variant present
    /// (`fp16` first). A single file is preferred over an index of the same variant. A folder
    /// holding only pickle `.bin` weights gets an error saying to convert them.
    public func weightFile(component: String?, variant: String? = nil,
                           baseNames: [String] = DiffusersModel.weightBaseNames) throws -> WeightFileChoice {
        let folder = try folder(component)
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let present = Set(listing)
        var searched: [String] = []
        for base in baseNames {
            var order: [String?] = [variant, nil]
            order += DiffusersModel.variants(of: base, in: listing).filter { $0 != variant }.map { Optional($0) }
            var tried = Set<String?>()
            for candidate in order where tried.insert(candidate).inserted {
                for (name, sharded) in DiffusersModel.fileNames(base: base, variant: candidate) {
                    searched.append(folder.appendingPathComponent(name).path)
                    if present.contains(name) {
                        return WeightFileChoice(url: folder.appendingPathComponent(name), isSharded: sharded,
                                                variant: candidate, requestedVariant: variant)
                    }
                }
            }
        }
        if let pickle = listing.sorted().first(where: { $0.hasSuffix(".bin") }) {
            throw ModelFilesError.unreadable(path: folder.appendingPathComponent(pickle).path,
                                             reason: "pickle .bin weights are not supported; convert to safetensors (diffusers: save_pretrained(..., safe_serialization=True))")
        }
        throw ModelFilesError.modelNotFound(id: folder.path, searched: searched,
                                            hint: "no safetensors weights in this folder; the download may be incomplete")
    }

    /// File names for one base and variant: the single file first, then the sharded index (both
    /// spellings diffusers has used for a variant index).
    static func fileNames(base: String, variant: String?) -> [(String, Bool)] {
        guard let variant else { return [("\(base).safetensors", false), ("\(base).safetensors.index.json", true)] }
        return [("\(base).\(variant).safetensors", false),
                ("\(base).safetensors.index.\(variant).json", true),
                ("\(base).\(variant).safetensors.index.json", true)]
    }

    /// Variant infixes present for `base` in a folder listing, `fp16` first, then sorted.
    /// A variant is letters, digits and `_` (so shard files `<base>.fp16-00001-of-00002` are not).
    static func variants(of base: String, in listing: [String]) -> [String] {
        func isVariant(_ s: Substring) -> Bool {
            !s.isEmpty && s.utf8.allSatisfy { b in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: "_")
            }
        }
        var found = Set<String>()
        for name in listing {
            for (prefix, suffix) in [("\(base).", ".safetensors"), ("\(base).safetensors.index.", ".json"), ("\(base).", ".safetensors.index.json")]
            where name.hasPrefix(prefix) && name.hasSuffix(suffix) && name.count > prefix.count + suffix.count {
                let middle = name.dropFirst(prefix.count).dropLast(suffix.count)
                if isVariant(middle) { found.insert(String(middle)) }
            }
        }
        return found.sorted { a, b in a == "fp16" || (b != "fp16" && a < b) }
    }
}
