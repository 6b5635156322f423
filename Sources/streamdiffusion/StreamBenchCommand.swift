import ArgumentParser
import Foundation
import ModelFiles
import Models
import StreamDiffusion
import Tensors

/// `bench stream`: the paper's tables for our pipeline on the real-size sd-turbo architecture
/// (random fp16 weights under the exact diffusers names, see `bench models`).
struct StreamBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Per-frame latency and FPS of the stream: steps, stream batch vs sequential, RCFG, breakdown.",
        discussion: """
        img2img and txt2img with 1, 2, 4 and 10 steps at each size, stream batch against sequential \
        denoising; the RCFG table runs none / self / initialize / full at 4 steps; the breakdown \
        splits one 1-step img2img frame into encode, UNet, decode and the rest. Latency is the \
        median time of one call once the stream is full (the frame that comes out entered S − 1 \
        calls earlier), FPS = frames per call / latency. The similarity table feeds synthetic \
        static, slow-pan and cut-heavy clips with the filter off and on and reports process CPU \
        time per input frame (the energy proxy). With --peer the official streamdiffusion package \
        runs 1-step img2img on PyTorch CPU (fp32) with the same threads in the same run \
        (tools/peer_stream_bench.py, `make python-tools`) and the ratio is its time / ours.
        """
    )

    @Option(help: "Image sizes, comma-separated (multiples of 64).")
    var sizes = "512,256"

    @Option(help: "Step counts, comma-separated.")
    var steps = "1,2,4,10"

    @OptionGroup var models: StreamBenchModelOptions

    @Option(help: "Frames per synthetic clip in the similarity-filter table.")
    var clipFrames = 30

    @Flag(help: "Also run the official streamdiffusion package on PyTorch (tools/peer_stream_bench.py) and print the ratio.")
    var peer = false

    @Option(help: "Python interpreter for --peer.")
    var python = "python3"

    @Option(help: "Peer script for --peer.")
    var peerScript = "tools/peer_stream_bench.py"

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Option(help: "Also write the JSON rows to this file (for tools/plot_bench.py), tables still printed.")
    var jsonOut: String?

    struct Row: Encodable {
        let table: String, mode: String, size: Int, steps: Int, cfg: String
        let msPerFrame: Double, fps: Double, unetRowsPerFrame: Int
        var framesProcessed: Int? = nil, framesSkipped: Int? = nil, cpuMsPerFrame: Double? = nil
    }

    func run() throws {
        let sizeList = try sizes.split(separator: ",").map { part -> Int in
            guard let s = Int(part), s >= 64, s % 64 == 0 else { throw ValidationError("bad size '\(part)'") }
            return s
        }
        let stepList = try steps.split(separator: ",").map { part -> Int in
            guard let s = Int(part), (1...50).contains(s) else { throw ValidationError("bad step count '\(part)'") }
            return s
        }
        if peer && models.model != nil { throw ValidationError("--peer times the synthetic sd-turbo weights; leave out --model") }
        if peer && !FileManager.default.fileExists(atPath: peerScript) {
            throw ValidationError("peer script \(peerScript) not found (run from the repository root, or pass --peer-script)")
        }
        let rig = try models.rig(log: json ? { _ in } : { print($0) })
        let backend = rig.backend, repeats = rig.repeats
        if !json { print("stream benchmark on \(backend), \(rig.summary)") }
        let preparedStream = rig.stream

        func measure(_ table: String, size: Int, indices: [Int], cfg: CFGType, batch: Bool, img2img: Bool) throws -> Row {
            let ms = try rig.msPerCall(size: size, indices: indices, cfg: cfg, batch: batch, img2img: img2img)
            let rows = StreamBenchRig.unetRows(steps: indices.count, cfg: cfg)
            let row = Row(table: table, mode: "\(img2img ? "img2img" : "txt2img") \(batch ? "stream batch" : "sequential")",
                          size: size, steps: indices.count, cfg: cfg.rawValue, msPerFrame: ms, fps: 1000 / ms, unetRowsPerFrame: rows)
            if !json {
                print(pad("\(row.mode)", 24) + pad("\(size)²", 7, right: true) + pad("\(row.steps) step\(row.steps == 1 ? "" : "s")", 10, right: true)
                      + pad(row.cfg, 12, right: true) + pad(format(ms, 1) + " ms", 14, right: true)
                      + pad(format(row.fps, 2) + " FPS", 12, right: true) + pad("\(rows) rows", 10, right: true))
            }
            return row
        }

        func indices(_ n: Int, img2img: Bool) -> [Int] { StreamBenchRig.indices(n, img2img: img2img) }

        var rows: [Row] = []
        if !json { print("\n== Steps: stream batch vs sequential (cfg none)") }
        for size in sizeList {
            for n in stepList {
                for img2img in [true, false] {
                    for batch in (n == 1 ? [true] : [true, false]) {
                        rows.append(try measure("steps", size: size, indices: indices(n, img2img: img2img), cfg: .none,
                                                batch: batch, img2img: img2img))
                    }
                }
            }
        }
        if !json { print("\n== RCFG at 4 steps, img2img, \(sizeList.last ?? 256)²") }
        for cfg in CFGType.allCases {
            rows.append(try measure("rcfg", size: sizeList.last ?? 256, indices: indices(4, img2img: true), cfg: cfg,
                                    batch: true, img2img: true))
        }
        let small = sizeList.last ?? 256
        if !json {
            print("\n== Similarity filter (threshold 0.98, max skip 10), img2img 1 step, \(small)², \(clipFrames) frames;"
                  + " CPU = process CPU time per input frame, the energy proxy")
        }
        for kind in SimilarityClip.Kind.allCases {
            let measurements = try [false, true].map { filterOn -> SimilarityMeasurement in
                var p = StreamParameters()
                (p.width, p.height, p.tIndexList, p.cfgType, p.enableSimilarImageFilter) = (small, small, [32], .none, filterOn)
                return try SimilarityClip(kind: kind, size: small).measure(preparedStream(p), frames: clipFrames)
            }
            for (m, filterOn) in zip(measurements, [false, true]) {
                let saving = measurements[0].cpuMsPerFrame / m.cpuMsPerFrame
                rows.append(Row(table: "similarity", mode: "\(kind.rawValue), filter \(filterOn ? "on" : "off")", size: small,
                                steps: 1, cfg: "none", msPerFrame: m.wallMsPerFrame, fps: 1000 / m.wallMsPerFrame,
                                unetRowsPerFrame: 1, framesProcessed: m.processed, framesSkipped: m.skipped,
                                cpuMsPerFrame: m.cpuMsPerFrame))
                if !json {
                    print(pad("\(kind.rawValue), filter \(filterOn ? "on" : "off")", 32)
                          + pad("\(m.processed) run / \(m.skipped) skipped", 22, right: true)
                          + pad(format(m.wallMsPerFrame, 1) + " ms/frame", 16, right: true)
                          + pad(format(m.cpuMsPerFrame, 1) + " CPU ms/frame", 19, right: true)
                          + pad(filterOn ? format(saving, 2) + "× less CPU" : "", 15, right: true))
                }
            }
        }

        if peer {
            let multiStep = stepList.filter { $0 > 1 }.map { indices($0, img2img: true) }
            let clip = try SimilarityClip(kind: .static, size: small).write(frames: clipFrames)
            defer { try? FileManager.default.removeItem(at: clip) }
            rows += try peerComparison(ours: rows, sizes: sizeList, rcfg: (small, indices(4, img2img: true)),
                                       steps: (small, multiStep, stepList), sequential: indices(4, img2img: true),
                                       similarity: (clip.path, clipFrames), threads: (backend as? CPUBackend)?.threads ?? models.compute.threads ?? ProcessInfo.processInfo.activeProcessorCount, tokenizer: models.tokenizer)
        }

        if !json { print("\n== Scaling: frame_buffer_size (frames per call), img2img 1 step, \(small)²") }
        for frames in 1...4 {
            var p = StreamParameters()
            (p.width, p.height, p.tIndexList, p.cfgType, p.frameBufferSize) = (small, small, [32], .none, frames)
            let stream = try preparedStream(p)
            let batch = try OpBenchmark.random(backend, [frames, small, small, 3])
            _ = try stream.img2img(batch)
            let ms = OpBenchmark.median(try rig.time(warmup: 0, repeats: repeats) { _ = try stream.img2img(batch) })
            let row = Row(table: "scaling", mode: "img2img stream batch", size: small, steps: 1, cfg: "none",
                          msPerFrame: ms / Double(frames), fps: 1000 * Double(frames) / ms, unetRowsPerFrame: 1)
            rows.append(row)
            if !json {
                print(pad("frame_buffer_size \(frames)", 24) + pad(format(ms, 1) + " ms/call", 16, right: true)
                      + pad(format(row.msPerFrame, 1) + " ms/frame", 16, right: true) + pad(format(row.fps, 2) + " FPS", 12, right: true))
            }
        }

        if !json { print("\n== Clients sharing one UNet call (serve batches its clients), img2img 1 step, \(small)²") }
        for clients in [2, 4] {
            let streams = try (0..<clients).map { k -> StreamPipeline in
                var p = StreamParameters()
                (p.width, p.height, p.tIndexList, p.cfgType, p.seed) = (small, small, [32], .self, UInt64(k))
                return try preparedStream(p)
            }
            let frame = try OpBenchmark.random(backend, [1, small, small, 3])
            let jobs = streams.map { ($0, frame) }
            let apart = OpBenchmark.median(try rig.time(warmup: 1, repeats: repeats) {
                for stream in streams { _ = try stream.img2img(frame) }
            })
            let together = OpBenchmark.median(try rig.time(warmup: 1, repeats: repeats) {
                _ = try StreamPipeline.img2img(jobs)
            })
            for (mode, ms) in [("one call per client", apart), ("one call for all", together)] {
                let row = Row(table: "clients", mode: "\(clients) clients, \(mode)", size: small, steps: 1, cfg: "self",
                              msPerFrame: ms / Double(clients), fps: 1000 * Double(clients) / ms, unetRowsPerFrame: 1)
                rows.append(row)
                if !json {
                    print(pad(row.mode, 34) + pad(format(ms, 1) + " ms/round", 17, right: true)
                          + pad(format(row.fps, 2) + " FPS", 12, right: true)
                          + pad(ms == together ? format(apart / together, 2) + "× throughput" : "", 18, right: true))
                }
            }
        }

        if !json { print("\n== Breakdown of one img2img frame, 1 step, \(small)²") }
        do {
            let image = try OpBenchmark.random(backend, [1, small, small, 3])
            let ids = [rig.tokenizer.encode("a photograph of a mountain lake at dawn")]
            let context = try rig.text(ids)
            let (encode, decode): ((Tensor) throws -> Tensor, (Tensor) throws -> Tensor)
            switch rig.vae {
            case let .tiny(taesd): (encode, decode) = (taesd.encode, taesd.decode)
            case let .kl(kl): (encode, decode) = (kl.encode, kl.decode)
            }
            let latents = try encode(image)
            let stages: [(String, () throws -> Void)] = [
                ("text encode (once per prompt)", { _ = try rig.text(ids) }),
                ("VAE encode", { _ = try encode(image) }),
                ("UNet (1 row)", { _ = try rig.unet(latents, timesteps: [359], context: context) }),
                ("VAE decode", { _ = try decode(latents) }),
            ]
            for (name, body) in stages {
                let ms = OpBenchmark.median(try rig.time(warmup: 1, repeats: repeats, body))
                rows.append(Row(table: "breakdown", mode: name, size: small, steps: 1, cfg: "none", msPerFrame: ms,
                                fps: 1000 / ms, unetRowsPerFrame: name.hasPrefix("UNet") ? 1 : 0))
                if !json { print(pad(name, 32) + pad(format(ms, 1) + " ms", 14, right: true)) }
            }
        }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let encoded = try encoder.encode(rows)
        if json { print(String(decoding: encoded, as: UTF8.self)) }
        if let jsonOut {
            do {
                try encoded.write(to: URL(fileURLWithPath: jsonOut), options: .atomic)
            } catch {
                throw ValidationError("cannot write --json-out \(jsonOut): \(error.localizedDescription)")
            }
        }
    }
}

extension StreamBenchCommand {
    /// Ratios against PyTorch CPU, same threads, same run (peer time per frame / ours). The official package (1-step img2img at every size, the multi-step stream and the RCFG modes
    /// at the smallest size) and plain diffusers img2img (every step count, smallest size), each
    /// against our row with the same settings. Multi-step rows run at the smallest size only: the
    /// official package takes about 5 s per UNet row at 512² here.
    func peerComparison(ours: [Row], sizes: [Int], rcfg: (size: Int, indices: [Int]),
                        steps: (size: Int, lists: [[Int]], counts: [Int]), sequential: [Int],
                        similarity: (clip: String, frames: Int), threads: Int, tokenizer: String) throws -> [Row] {
        if !json {
            print("\n== Peer: the official streamdiffusion package and plain diffusers on PyTorch CPU (fp32), \(threads) threads, same run")
        }
        let list = { (indices: [Int]) in indices.map(String.init).joined(separator: ",") }
        let answer = try PeerRunner(python: python, script: peerScript).run(
            ["--threads", "\(threads)", "--sizes", sizes.map(String.init).joined(separator: ","),
             "--t-index-list", "32", "--rcfg-size", "\(rcfg.size)", "--rcfg-t-index-list", list(rcfg.indices),
             "--steps-size", "\(steps.size)", "--steps-lists", steps.lists.map(list).joined(separator: "|"),
             "--diffusers-steps", steps.counts.map(String.init).joined(separator: ","),
             "--sequential-t-index-list", list(sequential), "--similarity-clip", similarity.clip,
             "--similarity-size", "\(steps.size)", "--similarity-frames", "\(similarity.frames)",
             "--repeats", "\(models.repeats)", "--tokenizer", tokenizer, "--weights", models.cache, "--json"])
        func line(_ label: String, _ mine: Double, _ theirs: Double, peer: String = "official") {
            if !json {
                print(pad(label, 30) + pad("ours " + format(mine, 1) + " ms", 18, right: true)
                      + pad("\(peer) " + format(theirs, 1) + " ms", 23, right: true)
                      + pad(format(theirs / mine, 2) + "× faster", 14, right: true))
            }
        }
        var rows: [Row] = []
        for size in sizes {
            guard let theirs = answer.results["img2img_\(size)_1step"]?.ms,
                  let mine = ours.first(where: { $0.table == "steps" && $0.size == size && $0.steps == 1
                                                 && $0.mode.hasPrefix("img2img") }) else { continue }
            rows.append(Row(table: "peer", mode: answer.peer, size: size, steps: 1, cfg: "none",
                            msPerFrame: theirs, fps: 1000 / theirs, unetRowsPerFrame: 1))
            line("img2img 1 step \(size)²", mine.msPerFrame, theirs)
        }
        func ourStreamBatch(_ n: Int) -> Row? {
            ours.first { $0.table == "steps" && $0.size == steps.size && $0.steps == n && $0.mode == "img2img stream batch" }
        }
        for indices in steps.lists {
            guard let theirs = answer.results["img2img_\(steps.size)_\(indices.count)step"]?.ms,
                  let mine = ourStreamBatch(indices.count) else { continue }
            rows.append(Row(table: "peer", mode: answer.peer, size: steps.size, steps: indices.count, cfg: "none",
                            msPerFrame: theirs, fps: 1000 / theirs, unetRowsPerFrame: indices.count))
            line("img2img \(indices.count) steps \(steps.size)²", mine.msPerFrame, theirs)
        }
        for n in steps.counts {
            guard let theirs = answer.results["diffusers_img2img_\(steps.size)_\(n)step"]?.ms, let mine = ourStreamBatch(n) else { continue }
            rows.append(Row(table: "peer-diffusers", mode: "diffusers img2img", size: steps.size, steps: n, cfg: "none",
                            msPerFrame: theirs, fps: 1000 / theirs, unetRowsPerFrame: 1))
            line("img2img \(n) step\(n == 1 ? "" : "s") \(steps.size)²", mine.msPerFrame, theirs, peer: "diffusers")
        }
        // The seeds' stream batch vs sequential, on both sides.
        if let theirs = answer.results["sequential_\(steps.size)_\(sequential.count)step"]?.ms,
           let theirBatch = answer.results["img2img_\(steps.size)_\(sequential.count)step"]?.ms,
           let mine = ours.first(where: { $0.table == "steps" && $0.size == steps.size && $0.steps == sequential.count
                                          && $0.mode == "img2img sequential" }),
           let myBatch = ourStreamBatch(sequential.count) {
            rows.append(Row(table: "peer", mode: "\(answer.peer) sequential", size: steps.size, steps: sequential.count,
                            cfg: "none", msPerFrame: theirs, fps: 1000 / theirs, unetRowsPerFrame: sequential.count))
            line("img2img \(sequential.count) steps sequential \(steps.size)²", mine.msPerFrame, theirs)
            if !json {
                print("  stream batch over sequential: ours " + format(mine.msPerFrame / myBatch.msPerFrame, 2)
                      + "×, official " + format(theirs / theirBatch, 2) + "× (the paper: 1.5× on a GPU)")
            }
        }
        // The seeds' similarity-filter saving on the static clip, on both sides.
        var saving: [Double] = []
        for on in [false, true] {
            let state = on ? "on" : "off"
            guard let theirs = answer.results["similarity_static_\(steps.size)_filter_\(state)"], let cpu = theirs.cpu_ms,
                  let mine = ours.first(where: { $0.table == "similarity" && $0.mode == "static, filter \(state)" }),
                  let myCPU = mine.cpuMsPerFrame else { continue }
            saving.append(cpu)
            rows.append(Row(table: "peer-similarity", mode: "static, filter \(state)", size: steps.size, steps: 1, cfg: "none",
                            msPerFrame: theirs.ms, fps: 1000 / theirs.ms, unetRowsPerFrame: 1,
                            framesProcessed: similarity.frames - (theirs.skipped ?? 0), framesSkipped: theirs.skipped,
                            cpuMsPerFrame: cpu))
            line("static clip, filter \(state), CPU", myCPU, cpu)
        }
        if saving.count == 2, !json {
            print("  filter on saves, CPU per input frame: official " + format(saving[0] / saving[1], 2) + "× (the paper: 2.39× GPU energy)")
        }
        for cfg in CFGType.allCases {
            guard let theirs = answer.results["rcfg_\(cfg.rawValue)_\(rcfg.size)_\(rcfg.indices.count)step"]?.ms,
                  let mine = ours.first(where: { $0.table == "rcfg" && $0.cfg == cfg.rawValue }) else { continue }
            rows.append(Row(table: "peer-rcfg", mode: answer.peer, size: rcfg.size, steps: rcfg.indices.count,
                            cfg: cfg.rawValue, msPerFrame: theirs, fps: 1000 / theirs, unetRowsPerFrame: mine.unetRowsPerFrame))
            line("RCFG \(cfg.rawValue), \(rcfg.indices.count) steps \(rcfg.size)²", mine.msPerFrame, theirs)
        }
        return rows
    }
}
