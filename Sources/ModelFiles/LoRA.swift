import Foundation
import Tensors

/// A LoRA checkpoint (e.g. LCM-LoRA) read in either common layout:
/// - diffusers/PEFT: `unet.<module>.lora_A.weight` (down, [r, in(, kh, kw)]), `unet.<module>.lora_B.weight`
///   (up, [out, r(, 1, 1)]), optional `unet.<module>.alpha`;
/// - kohya/A1111: `lora_unet_<module with '.' as '_'>.lora_down.weight`, `.lora_up.weight`, `.alpha`.
/// Text-encoder entries (`text_encoder.`, `lora_te…`) are recognised and set aside.
public struct LoRAFile: Sendable {
    public enum Layout: String, Sendable { case diffusers, kohya }

    public struct Update: Sendable {
        /// The key as written in the file, without the down/up/alpha suffix.
        public let key: String
        public let down: String, up: String
        /// Nil means alpha = rank (a factor of 1).
        public let alpha: Float?
    }

    public let source: any WeightSource
    public let layout: Layout
    /// UNet updates by their file key.
    public let updates: [String: Update]
    /// Entries for other models (text encoders), not applied to the UNet.
    public let otherModelKeys: [String]

    /// Alpha is read from `<key>.alpha` tensors (kohya; F32 or integer), else from the PEFT config
    /// diffusers stores in the header (`__metadata__["lora_adapter_metadata"]`: `unet.lora_alpha`
    /// and `unet.alpha_pattern`), else it equals the rank.
    public init(_ source: any WeightSource) throws {
        self.source = source
        let file = source as? SafeTensorsFile
        let integerAlphas = (file?.unsupportedTensors.keys).map { Array($0).filter { $0.hasSuffix(".alpha") } } ?? []
        var groups: [String: (down: String?, up: String?, alpha: String?)] = [:]
        var others: [String] = []
        var sawKohya = false, sawDiffusers = false
        for name in source.names + integerAlphas {
            if name.hasPrefix("text_encoder") || name.hasPrefix("lora_te") { others.append(name); continue }
            let suffixes: [(String, Int)] = [(".lora_A.weight", 0), (".lora_down.weight", 0), (".lora_B.weight", 1),
                                             (".lora_up.weight", 1), (".alpha", 2)]
            guard let (suffix, slot) = suffixes.first(where: { name.hasSuffix($0.0) }) else {
                throw ModelFilesError.badTensor(path: source.location, tensor: name,
                                                reason: "not a LoRA tensor (expected lora_A/lora_B, lora_down/lora_up or alpha)")
            }
            var key = String(name.dropLast(suffix.count))
            if key.hasPrefix("unet.") { key.removeFirst(5); sawDiffusers = true } else if key.hasPrefix("lora_unet_") { sawKohya = true }
            var group = groups[key] ?? (nil, nil, nil)
            switch slot {
            case 0: group.down = name
            case 1: group.up = name
            default: group.alpha = name
            }
            groups[key] = group
        }
        guard !(sawKohya && sawDiffusers) else {
            throw ModelFilesError.badConfig(path: source.location, reason: "mixes kohya and diffusers LoRA names")
        }
        let peft = try LoRAFile.peftAlphas(file?.metadata["lora_adapter_metadata"], path: source.location)
        var updates: [String: Update] = [:]
        for (key, group) in groups {
            guard let down = group.down, let up = group.up else {
                throw ModelFilesError.badTensor(path: source.location, tensor: key,
                                                reason: "LoRA module lacks its \(group.down == nil ? "down (A)" : "up (B)") matrix")
            }
            var alpha: Float? = nil
            if let name = group.alpha {
                if let value = file?.integerScalar(name) {
                    alpha = Float(value)
                } else {
                    let values = try source.withBytes(of: name) { bytes, entry -> [Float] in
                        try ReferenceBackend().floats(ReferenceBackend().tensor(raw: bytes, format: entry.format, shape: entry.shape, dtype: .float32))
                    }
                    guard values.count == 1 else {
                        throw ModelFilesError.badTensor(path: source.location, tensor: name, reason: "alpha must be a single number")
                    }
                    alpha = values[0]
                }
            } else if let peft {
                alpha = peft.pattern.first { key == $0.key || key.hasSuffix("." + $0.key) }?.value ?? peft.alpha
            }
            updates[key] = Update(key: key, down: down, up: up, alpha: alpha)
        }
        self.updates = updates
        layout = sawKohya ? .kohya : .diffusers
        otherModelKeys = others.sorted()
    }

    /// The UNet's `lora_alpha` and per-module `alpha_pattern` from diffusers' header metadata.
    static func peftAlphas(_ json: String?, path: String) throws -> (alpha: Float?, pattern: [String: Float])? {
        guard let json else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ModelFilesError.badConfig(path: path, reason: "lora_adapter_metadata is not a JSON object")
        }
        let alpha = (object["unet.lora_alpha"] as? NSNumber)?.floatValue
        let pattern = ((object["unet.alpha_pattern"] as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.floatValue }
        return (alpha, pattern)
    }
}

/// A model's weights with a LoRA fused in at load time: W' = W + scale · (alpha / r) · up · down
/// (for convolutions the spatial kernel rides on `down`; `up` is 1×1), computed in fp32 once per
/// weight as the model binds it. Weights the LoRA does not touch pass through unchanged.
public final class LoRAFusedWeights: WeightSource, @unchecked Sendable {
    public let base: any WeightSource
    public let lora: LoRAFile
    public let scale: Float
    /// LoRA modules that match no weight of the base model.
    public let unmatched: [String]
    private let targets: [String: LoRAFile.Update]   // base weight name → update
    private let backend: CPUBackend

    public init(base: any WeightSource, lora: LoRAFile, scale: Float = 1, threads: Int? = nil) throws {
        (self.base, self.lora, self.scale) = (base, lora, scale)
        backend = try CPUBackend(threads: threads, precision: .float32)
        var byKohyaName: [String: String] = [:]
        if lora.layout == .kohya {
            for name in base.names where name.hasSuffix(".weight") {
                let module = String(name.dropLast(7))
                byKohyaName["lora_unet_" + module.replacingOccurrences(of: ".", with: "_")] = name
            }
        }
        var targets: [String: LoRAFile.Update] = [:], unmatched: [String] = []
        for (key, update) in lora.updates {
            let weight = lora.layout == .kohya ? byKohyaName[key] : key + ".weight"
            if let weight, base.entry(weight) != nil { targets[weight] = update } else { unmatched.append(key) }
        }
        self.targets = targets
        self.unmatched = unmatched.sorted()
    }

    public var location: String { "\(base.location) + LoRA \(lora.source.location)" }
    public var names: [String] { base.names }
    /// Base weights the LoRA changes.
    public var fusedWeightNames: [String] { targets.keys.sorted() }

    public func entry(_ name: String) -> TensorEntry? {
        guard let entry = base.entry(name) else { return nil }
        guard targets[name] != nil else { return entry }
        // Fused weights are produced in fp32.
        return TensorEntry(name: name, format: .float32, shape: entry.shape, byteRange: 0..<(Tensor.count(of: entry.shape) * 4))
    }

    public func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer, TensorEntry) throws -> R) throws -> R {
        guard let update = targets[name], let entry = entry(name) else { return try base.withBytes(of: name, body) }
        let fused = try fuse(name, update, shape: entry.shape)
        return try fused.withUnsafeBytes { try body($0, entry) }
    }

    func fuse(_ name: String, _ update: LoRAFile.Update, shape: [Int]) throws -> [Float] {
        let source = lora.source
        guard let downEntry = source.entry(update.down), let upEntry = source.entry(update.up),
              let out = shape.first, downEntry.shape.count >= 2, upEntry.shape.count >= 2 else {
            throw ModelFilesError.badTensor(path: source.location, tensor: update.key, reason: "LoRA matrices missing or not 2-D")
        }
        let rank = downEntry.shape[0], inner = Tensor.count(of: shape) / max(out, 1)
        guard upEntry.shape[0] == out, Tensor.count(of: upEntry.shape) == out * rank,
              Tensor.count(of: downEntry.shape) == rank * inner else {
            throw ModelFilesError.badTensor(path: source.location, tensor: update.key,
                                            reason: "LoRA shapes up \(upEntry.shape) × down \(downEntry.shape) do not make \(name) \(shape)")
        }
        let factor = scale * (update.alpha.map { $0 / Float(rank) } ?? 1)
        let up = try source.tensor(update.up, on: backend).reshaped([out, rank])
        let down = try source.tensor(update.down, on: backend).reshaped([rank, inner])
        let delta = try backend.scale(backend.matmul(up, down), by: factor, adding: 0)
        let weight = try base.tensor(name, on: backend).reshaped([out, inner])
        return try backend.floats(backend.add(weight, delta))
    }
}
