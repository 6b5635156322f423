import ModelFiles
import Tensors

/// TAESD's residual block: relu(conv(x) + x) with conv = conv3×3 → ReLU → conv3×3 → ReLU → conv3×3
/// (weights `conv.0`, `conv.2`, `conv.4`; a 1×1 `skip` only when channels change).
struct TinyBlock: Sendable {
    let conv0: Conv2d, conv2: Conv2d, conv4: Conv2d
    let skip: Conv2d?
    let backend: any Backend

    init(_ scope: WeightScope, inChannels: Int, outChannels: Int) throws {
        conv0 = try Conv2d(scope("conv")(0), inChannels: inChannels, outChannels: outChannels, kernel: 3)
        conv2 = try Conv2d(scope("conv")(2), inChannels: outChannels, outChannels: outChannels, kernel: 3)
        conv4 = try Conv2d(scope("conv")(4), inChannels: outChannels, outChannels: outChannels, kernel: 3)
        skip = inChannels == outChannels ? nil
            : try Conv2d(scope("skip"), inChannels: inChannels, outChannels: outChannels, kernel: 1, bias: false)
        backend = scope.backend
    }

    /// Activations stay in the compute dtype end to end; every ReLU and the residual add ride on
    /// the convolutions (TAESD is memory-bound at 512×512: each avoided pass counts).
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let compute = backend.computeDType
        let h = try conv2(conv0(x, relu: true, outputDType: compute), relu: true, outputDType: compute)
        return try conv4(h, addend: skip.map { try $0(x, outputDType: compute) } ?? x, relu: true, outputDType: compute)
    }
}

/// diffusers `AutoencoderTiny` (TAESD). Images are NHWC in [-1, 1]; latents are the scaled
/// latents the UNet uses (TAESD's scaling factor is 1).
public struct AutoencoderTiny: Sendable {
    public let config: AutoencoderTinyConfig
    enum Layer: Sendable {
        case conv(Conv2d), block(TinyBlock), relu, upsample
    }
    let encoder: [Layer]
    let decoder: [Layer]
    let backend: any Backend

    /// `scope` is the root of the TAESD weights (`encoder.layers.*`, `decoder.layers.*`).
    public init(_ scope: WeightScope, config: AutoencoderTinyConfig) throws {
        do { try config.validate() } catch {
            throw ModelError.unsupportedConfig(path: "vae/config.json", reason: "\(error)")
        }
        self.config = config
        backend = scope.backend
        // Layer indices follow nn.Sequential numbering (parameter-free ReLU/Upsample take an index too).
        var index = 0
        func next() -> Int { defer { index += 1 }; return index }

        let e = scope("encoder")("layers")
        var encoder: [Layer] = []
        for (level, blocks) in config.numEncoderBlocks.enumerated() {
            let channels = config.encoderBlockOutChannels[level]
            if level == 0 {
                encoder.append(.conv(try Conv2d(e(next()), inChannels: config.inChannels, outChannels: channels, kernel: 3)))
            } else {
                encoder.append(.conv(try Conv2d(e(next()), inChannels: channels, outChannels: channels, kernel: 3,
                                                stride: 2, padding: 1, bias: false)))
            }
            for _ in 0..<blocks { encoder.append(.block(try TinyBlock(e(next()), inChannels: channels, outChannels: channels))) }
        }
        encoder.append(.conv(try Conv2d(e(next()), inChannels: config.encoderBlockOutChannels.last ?? 0,
                                        outChannels: config.latentChannels, kernel: 3)))
        self.encoder = encoder

        index = 0
        let d = scope("decoder")("layers"), levels = config.numDecoderBlocks.count
        var decoder: [Layer] = [.conv(try Conv2d(d(next()), inChannels: config.latentChannels,
                                                 outChannels: config.decoderBlockOutChannels[0], kernel: 3))]
        _ = next()
        decoder.append(.relu)
        for (level, blocks) in config.numDecoderBlocks.enumerated() {
            let channels = config.decoderBlockOutChannels[level], final = level == levels - 1
            for _ in 0..<blocks { decoder.append(.block(try TinyBlock(d(next()), inChannels: channels, outChannels: channels))) }
            if !final { _ = next(); decoder.append(.upsample) }
            decoder.append(.conv(try Conv2d(d(next()), inChannels: channels, outChannels: final ? config.outChannels : channels,
                                            kernel: 3, bias: final)))
        }
        self.decoder = decoder
        try scope.requireAllUsed()
    }

    /// Runs the layers with activations in the compute dtype; a ReLU after a convolution is fused
    /// into it, and the last layer writes fp32.
    func run(_ layers: [Layer], _ input: Tensor) throws -> Tensor {
        let compute = backend.computeDType
        var x = input
        var i = 0
        while i < layers.count {
            let last = i == layers.count - 1
            switch layers[i] {
            case let .conv(conv):
                let fuseReLU = !last && { if case .relu = layers[i + 1] { return true } else { return false } }()
                x = try conv(x, relu: fuseReLU, outputDType: last ? .float32 : compute)
                if fuseReLU { i += 1 }
            case let .block(block): x = try block(x)
            case .relu: x = try backend.clamp(backend.convert(x, to: .float32), min: 0, max: .infinity)
            case .upsample: x = try backend.upsampleNearest2x(x)
            }
            i += 1
        }
        return x.dtype == .float32 ? x : try backend.convert(x, to: .float32)
    }

    var downscale: Int { 1 << (config.numEncoderBlocks.count - 1) }

    /// image [N, H, W, 3] in [-1, 1] → latents [N, H/8, W/8, 4] (diffusers maps the image to [0, 1]
    /// first, TAESD's own convention).
    public func encode(_ image: Tensor) throws -> Tensor {
        guard image.rank == 4, image.shape[3] == config.inChannels, image.shape[1] % downscale == 0,
              image.shape[2] % downscale == 0, image.shape[1] > 0, image.shape[2] > 0 else {
            throw ModelError.badInput(model: "AutoencoderTiny", reason: "image must be [N, H, W, \(config.inChannels)] with H, W multiples of \(downscale); got \(image.shape)")
        }
        return try run(encoder, backend.scale(image, by: 0.5, adding: 0.5))
    }

    /// latents [N, h, w, 4] → image [N, 8h, 8w, 3] in about [-1, 1]. The input is soft-clamped with
    /// tanh(x / 3)·3 as TAESD does; the output is mapped from [0, 1] to [-1, 1] and not clamped.
    public func decode(_ latents: Tensor) throws -> Tensor {
        guard latents.rank == 4, latents.shape[3] == config.latentChannels else {
            throw ModelError.badInput(model: "AutoencoderTiny", reason: "latents must be [N, h, w, \(config.latentChannels)], got \(latents.shape)")
        }
        let clamped = try backend.scale(backend.activation(backend.scale(latents, by: 1.0 / 3, adding: 0), .tanh), by: 3, adding: 0)
        return try backend.scale(run(decoder, clamped), by: 2, adding: -1)
    }
}
