import ArgumentParser
import DemoEvaluation
import Foundation
import Media
import StreamDiffusion
import Tensors

/// `bench guidance`: the paper's open question on RCFG against full CFG, answered on the demo
/// model, whose pictures can be judged: prompt adherence is the meaning tests' score over the
/// 21-prompt grid, diversity the mean pairwise distance between the pictures one prompt gives
/// across seeds.
struct GuidanceBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guidance",
        abstract: "RCFG vs full CFG on the demo model: prompt adherence and diversity across seeds, per cfg type and guidance.",
        discussion: """
        Each grid prompt ("a red star on a white background", …) runs once per seed through a fresh \
        stream; the picture is the first one out (after the S − 1 calls of stream-batch latency). \
        score = the fraction of pictures whose background colour, shape colour and shape all match \
        the prompt (the judgement of Tests/DemoModelTests). diversity = for each prompt, the mean \
        over pairs of seeds of the mean absolute difference per channel value (0–1 scale), averaged \
        over prompts. txt2img starts from the seed's noise; img2img starts from a rendered picture \
        of another grid case whose colour, shape and background all differ, so the prompt has to \
        change all three (by default at the official strength, t-index 32,45, and a stronger one, \
        16,32,45). CFG is active only above guidance 1 (the official rule), so every cfg type \
        equals none at 1.0; none itself runs once. Scores mean something only for the demo model.
        """
    )

    @OptionGroup var models: DemoBenchModelOptions

    @Option(help: "CFG types, comma-separated: none, self, initialize, full.")
    var cfgTypes = "none,self,initialize,full"

    @Option(help: "Guidance scales, comma-separated (0–20).")
    var guidanceScales = "1.0,1.2,1.4,1.6,1.8,2.0"

    @Option(help: "Seeds per prompt (seeds 1…N).")
    var seeds = 3

    @Option(help: "Modes, comma-separated: txt2img, img2img.")
    var modes = "txt2img,img2img"

    @Option(help: "t-index list of txt2img; repeat the option for several (default: the txt2img default 0,16,32,45).")
    var txt2imgTIndexList: [String] = ["0,16,32,45"]

    @Option(help: "t-index list of img2img; repeat the option for several (default: the official 32,45 and the stronger 16,32,45).")
    var img2imgTIndexList: [String] = ["32,45", "16,32,45"]

    @Option(help: "delta: scale of the virtual negative noise of self and initialize.")
    var delta = 1.0

    @Option(help: "Negative prompt (full and initialize; the official default is empty).")
    var negativePrompt = ""

    @Option(help: "Use only the first N grid prompts (1–21).")
    var prompts = 21

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    struct Row: Codable {
        let mode: String, tIndexList: [Int], cfg: String, guidance: Double
        /// False where the cfg type ignores the guidance scale (none, or any type at guidance ≤ 1).
        let guidanceActive: Bool
        let pictures: Int, right: Int, score: Double
        let backgroundRight: Double, colourRight: Double, shapeRight: Double
        let diversity: Double
        let msPerPicture: Double
    }

    struct Report: Codable {
        var benchmark = "guidance"
        let model: String, backend: String, size: Int, seeds: [UInt64], prompts: Int
        let delta: Double, negativePrompt: String
        var scoreDefinition = "fraction of pictures whose background, shape colour and shape match the prompt (DemoModelTests' judgement)"
        var diversityDefinition = "per prompt, mean over seed pairs of the mean absolute difference per channel value in [0, 1]; averaged over prompts"
        var rows: [Row] = []
    }

    func run() throws {
        let cfgs = try BenchList.parse(cfgTypes, option: "--cfg-types", CFGType.init(rawValue:), valid: "none, self, initialize, full")
        let scales = try BenchList.parse(guidanceScales, option: "--guidance-scales", Double.init, valid: "numbers 0...20") {
            $0.isFinite && (0...20).contains($0)
        }
        let modeList = try BenchList.parse(modes, option: "--modes", { ["txt2img", "img2img"].contains($0) ? $0 : nil },
                                           valid: "txt2img, img2img")
        let index = { (text: String, option: String) in
            try BenchList.parse(text, option: option, Int.init, valid: "indices 0...49") { (0...49).contains($0) }
        }
        var settings: [(mode: String, indices: [Int])] = []
        for mode in modeList {
            for list in mode == "txt2img" ? txt2imgTIndexList : img2imgTIndexList {
                settings.append((mode, try index(list, "--\(mode)-t-index-list")))
            }
        }
        guard !settings.isEmpty else { throw ValidationError("no t-index list given for \(modeList.joined(separator: ", "))") }
        guard (1...100).contains(seeds) else { throw ValidationError("--seeds must be 1...100 (got \(seeds))") }
        guard delta.isFinite, (0...10).contains(delta) else { throw ValidationError("--delta must be 0...10 (got \(delta))") }
        guard (1...DemoCase.grid.count).contains(prompts) else { throw ValidationError("--prompts must be 1...\(DemoCase.grid.count)") }
        let loaded = try models.load(log: json ? { _ in } : { print($0) })
        let seedList = (1...seeds).map(UInt64.init)
        var report = Report(model: loaded.name, backend: "\(loaded.backend)", size: loaded.size, seeds: seedList, prompts: prompts,
                            delta: delta, negativePrompt: negativePrompt)
        if !json {
            print("guidance at \(loaded.size)², \(prompts) prompts × \(seeds) seeds, delta \(delta), negative prompt \"\(negativePrompt)\"")
            print(pad("mode", 9) + pad("t-index", 12) + pad("cfg", 12) + pad("guidance", 10, right: true) + pad("score", 8, right: true)
                  + pad("bg / colour / shape", 22, right: true) + pad("diversity", 11, right: true) + pad("ms/picture", 12, right: true))
        }
        for (mode, indices) in settings {
            for cfg in cfgs {
                for g in cfg == .none ? [1.0] : scales {
                    let row = try measure(loaded, mode: mode, indices: indices, cfg: cfg, guidance: g, seeds: seedList)
                    report.rows.append(row)
                    if !json {
                        print(pad(mode, 9) + pad(indices.map(String.init).joined(separator: ","), 12) + pad(cfg.rawValue, 12) + pad(format(row.guidance, 1), 10, right: true)
                              + pad(format(row.score, 3), 8, right: true)
                              + pad("\(format(row.backgroundRight, 2)) / \(format(row.colourRight, 2)) / \(format(row.shapeRight, 2))", 22, right: true)
                              + pad(format(row.diversity, 4), 11, right: true) + pad(format(row.msPerPicture, 0), 12, right: true))
                    }
                }
            }
        }
        if json { try printJSON(report) }
    }

    /// Every grid prompt (up to `prompts`) × every seed at one setting.
    func measure(_ m: DemoBenchModelOptions.Loaded, mode: String, indices: [Int], cfg: CFGType, guidance: Double,
                 seeds: [UInt64]) throws -> Row {
        var score = DemoScore(), diversities: [Double] = []
        let start = ProcessClock.wallSeconds()
        for c in DemoCase.grid.prefix(prompts) {
            var pictures: [RGBImage] = []
            for seed in seeds {
                var p = StreamParameters()
                (p.width, p.height, p.seed, p.tIndexList) = (m.size, m.size, seed, indices)
                (p.cfgType, p.guidanceScale, p.delta) = (cfg, Float(guidance), Float(delta))
                let picture = try generate(m, p, case: c, img2img: mode == "img2img")
                score.judge(picture, c, label: "\(c) seed \(seed)")
                pictures.append(picture)
            }
            if let d = try PictureDistance.meanPairwise(pictures) { diversities.append(d) }
        }
        let n = Double(max(1, score.total))
        return Row(mode: mode, tIndexList: indices, cfg: cfg.rawValue, guidance: guidance, guidanceActive: cfg != .none && guidance > 1,
                   pictures: score.total, right: score.all, score: score.passRate, backgroundRight: Double(score.background) / n,
                   colourRight: Double(score.colour) / n, shapeRight: Double(score.shape) / n,
                   diversity: diversities.isEmpty ? 0 : diversities.reduce(0, +) / Double(diversities.count),
                   msPerPicture: 1000 * (ProcessClock.wallSeconds() - start) / n)
    }

    /// One picture through a fresh stream: txt2img from the seed's noise, or img2img from the
    /// rendered contrasting case, fed until the first frame has finished every step.
    func generate(_ m: DemoBenchModelOptions.Loaded, _ p: StreamParameters, case c: DemoCase, img2img: Bool) throws -> RGBImage {
        let stream = try StreamPipeline(model: m.model, scheduler: m.scheduler, parameters: p, backend: m.backend)
        try stream.prepare(prompt: c.prompt, negativePrompt: negativePrompt)
        let call: () throws -> Tensor
        if img2img {
            let input = try DemoRenderer.render(c.contrastingCase, size: m.size)
            let frame = try m.backend.tensor(input.floats(), shape: [1, m.size, m.size, 3])
            call = { try stream.img2img(frame) }
        } else {
            call = stream.txt2img
        }
        var output = try call()
        for _ in 0..<stream.latency { output = try call() }
        return try RGBImage(floats: m.backend.floats(output), width: m.size, height: m.size)
    }
}
