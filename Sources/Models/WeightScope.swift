import Foundation
import ModelFiles
import Synchronization
import Tensors

/// Binds layers to their weights by diffusers name. A scope is a prefix into a `WeightSource`
/// (`scope("down_blocks")("0")("resnets")` reads `down_blocks.0.resnets.…`); every read is checked
/// against the shape the layer expects, and the scope remembers what was read so a loader can
/// report tensors the model never used.
public struct WeightScope: Sendable {
    public let source: any WeightSource
    public let backend: any Backend
    public let prefix: String
    /// Checks names and shapes without loading matrix weights (see `init(validating:backend:)`).
    public let validateOnly: Bool
    private let usage: Usage

    final class Usage: Sendable {
        let names = Mutex(Set<String>())
    }

    public init(source: any WeightSource, backend: any Backend) {
        self.init(source: source, backend: backend, prefix: "", validateOnly: false, usage: Usage())
    }

    /// A scope that binds a whole model by name and shape while loading only its small tensors:
    /// linear and convolution weights are checked but not read, so `inspect` can verify a
    /// multi-gigabyte checkpoint in moments. Models built this way cannot run.
    public init(validating source: any WeightSource, backend: any Backend) {
        self.init(source: source, backend: backend, prefix: "", validateOnly: true, usage: Usage())
    }

    private init(source: any WeightSource, backend: any Backend, prefix: String, validateOnly: Bool, usage: Usage) {
        (self.source, self.backend, self.prefix, self.validateOnly, self.usage) = (source, backend, prefix, validateOnly, usage)
    }

    /// The child scope `prefix.name`.
    public func callAsFunction(_ name: String) -> WeightScope {
        WeightScope(source: source, backend: backend, prefix: path(name), validateOnly: validateOnly, usage: usage)
    }

    public func callAsFunction(_ index: Int) -> WeightScope { self(String(index)) }

    /// The full tensor name of `name` in this scope.
    public func path(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    public func contains(_ name: String) -> Bool { source.entry(path(name)) != nil }

    /// Loads `name` as fp32 after checking its shape. Shapes equal up to trailing 1s are accepted
    /// (a [C, C, 1, 1] 1×1 convolution stored where a [C, C] linear layer is expected, or back).
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        try check(name, shape: shape)
        return try source.tensor(path(name), on: backend).reshaped(shape)
    }

    /// Checks that `name` exists with `shape` and marks it used, without reading it.
    public func check(_ name: String, shape: [Int]) throws {
        let full = path(name)
        guard let entry = source.entry(full) else {
            throw ModelFilesError.missingTensor(path: source.location, tensor: full)
        }
        guard WeightScope.squeezed(entry.shape) == WeightScope.squeezed(shape),
              Tensor.count(of: entry.shape) == Tensor.count(of: shape) else {
            throw ModelFilesError.shapeMismatch(path: source.location, tensor: full, expected: shape, actual: entry.shape)
        }
        usage.names.withLock { _ = $0.insert(full) }
    }

    static func squeezed(_ shape: [Int]) -> [Int] {
        var s = shape
        while s.count > 1, s.last == 1 { s.removeLast() }
        return s
    }

    /// A linear layer `name.weight` [out, in] (+ `name.bias` [out]).
    public func linear(inFeatures: Int, outFeatures: Int, bias: Bool = true) throws -> any LinearWeights {
        if validateOnly {
            try check("weight", shape: [outFeatures, inFeatures])
            if bias { try check("bias", shape: [outFeatures]) }
            return UnloadedLinear(inFeatures: inFeatures, outFeatures: outFeatures, hasBias: bias)
        }
        let w = try tensor("weight", shape: [outFeatures, inFeatures])
        let b = bias ? try tensor("bias", shape: [outFeatures]) : nil
        return try backend.prepareLinear(weight: w, bias: b)
    }

    /// A convolution `name.weight` [out, in, k, k] (+ `name.bias` [out]).
    public func conv2d(inChannels: Int, outChannels: Int, kernel: Int, geometry: Conv2dGeometry,
                       bias: Bool = true) throws -> any Conv2dWeights {
        if validateOnly {
            try check("weight", shape: [outChannels, inChannels, kernel, kernel])
            if bias { try check("bias", shape: [outChannels]) }
            return UnloadedConv2d(spec: Conv2dSpec(outChannels: outChannels, inChannels: inChannels, kernelH: kernel,
                                                   kernelW: kernel, geometry: geometry, hasBias: bias))
        }
        let w = try tensor("weight", shape: [outChannels, inChannels, kernel, kernel])
        let b = bias ? try tensor("bias", shape: [outChannels]) : nil
        return try backend.prepareConv2d(weight: w, bias: b, geometry: geometry)
    }

    /// Tensors under this scope's prefix that no layer has read.
    public func unusedTensors(ignoring ignored: (String) -> Bool = { _ in false }) -> [String] {
        let used = usage.names.withLock { $0 }
        let start = prefix.isEmpty ? "" : prefix + "."
        return source.names.filter { $0.hasPrefix(start) && !used.contains($0) && !ignored($0) }
    }

    /// Throws `unusedTensors` when the source holds weights the model did not bind: a sign that
    /// the file is for another architecture or config.
    public func requireAllUsed(ignoring ignored: (String) -> Bool = { _ in false }) throws {
        let extra = unusedTensors(ignoring: ignored)
        if !extra.isEmpty { throw ModelFilesError.unusedTensors(path: source.location, tensors: extra) }
    }
}

/// Weights checked by a validating scope but never loaded; no backend accepts them for compute.
final class UnloadedLinear: LinearWeights {
    let inFeatures: Int, outFeatures: Int, hasBias: Bool
    init(inFeatures: Int, outFeatures: Int, hasBias: Bool) {
        (self.inFeatures, self.outFeatures, self.hasBias) = (inFeatures, outFeatures, hasBias)
    }
}

final class UnloadedConv2d: Conv2dWeights {
    let spec: Conv2dSpec
    init(spec: Conv2dSpec) { self.spec = spec }
}
