import ArgumentParser
import Foundation
import StreamDiffusion
import Tensors

/// `bench scaling`: the paper's open question on batch size. Stream batch img2img with S steps and
/// F frames per call runs S·F UNet rows per call; this times every (S, F) and records the peak
/// resident memory while each ran.
struct ScalingBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Stream batch scaling: rows (steps × frame_buffer_size) against throughput, latency and peak memory.",
        discussion: """
        img2img with stream batch, cfg none, t-index lists spread from 32 to 45 (1 step: 32; 2: 32,45; \
        4: 32,36,40,45), on the sd-turbo architecture with random weights unless --model is given. \
        Per configuration: the median time of one call once the stream is full; frames/s = F / call \
        time; per-frame latency = S × call time (a frame enters at the start of one call and its \
        picture leaves at the end of the call S − 1 calls later; waiting to gather F camera frames is \
        not counted); peak RSS = the resident-memory high-water mark while the configuration ran \
        (stream set-up, filling and timed calls). Memory (--memory): subprocess (the default) runs \
        each configuration in a fresh process of this binary and, on Linux, resets the mark through \
        /proc/self/clear_refs once the model is loaded, so a peak is the weights plus what that \
        configuration adds; where the reset fails the peak is the whole process's, model load \
        included. in-process resets the mark before each configuration in one process after \
        handing back the buffer pool and the heap; weight layouts cached for earlier batch shapes \
        stay resident, so later peaks include them.
        """
    )

    @OptionGroup var models: StreamBenchModelOptions

    @Option(help: "Picture size (a multiple of 8).")
    var size = 256

    @Option(help: "Step counts S, comma-separated (1...14: the spread from index 32 to 45 has 14 indices).")
    var steps = "1,2,4"

    @Option(help: "Frames per call F (frame_buffer_size), comma-separated.")
    var frameBufferSizes = "1,2,4"

    @Option(help: "How peak memory is measured: subprocess (one process per configuration) or in-process.")
    var memory = "subprocess"

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    struct Row: Codable {
        let steps: Int, frameBufferSize: Int, rows: Int, tIndexList: [Int]
        let msPerCall: Double, framesPerSecond: Double, latencyMs: Double
        let peakRSSMiB: Double
        /// Resident memory when the configuration started (clear_refs only): the model and what stays allocated.
        var rssBeforeMiB: Double?
    }

    struct Report: Codable {
        var benchmark = "scaling"
        var model: String, backend: String, threads: Int
        let size: Int
        var mode = "img2img stream batch, cfg none"
        var memoryMethod: String
        var latencyDefinition = "S × call time: from the start of the call a frame enters to the end of the call that returns it"
        var rows: [Row] = []
    }

    func validate() throws {
        guard size > 0, size % 8 == 0 else { throw ValidationError("--size must be a positive multiple of 8 (got \(size))") }
        // "child": one configuration, run by the subprocess method.
        guard ["subprocess", "in-process", "child"].contains(memory) else {
            throw ValidationError("--memory must be subprocess or in-process (got '\(memory)')")
        }
    }

    func run() throws {
        let stepList = try BenchList.parse(steps, option: "--steps", Int.init, valid: "integers 1...14") { (1...14).contains($0) }
        let frameList = try BenchList.parse(frameBufferSizes, option: "--frame-buffer-sizes", Int.init, valid: "integers 1...16") {
            (1...16).contains($0)
        }
        let log: (String) -> Void = json ? { _ in } : { print($0) }
        let inProcess = memory == "in-process"
        if inProcess, !(PeakMemory.reset() && PeakMemory.status() != nil) {
            throw ValidationError("--memory in-process: cannot reset the peak through /proc/self/clear_refs here; use --memory subprocess")
        }
        // The subprocess method loads the model only in its children (the first one writes the
        // synthetic weights if they are not cached yet, before its peak is reset).
        let rig = memory == "subprocess" ? nil : try models.rig(log: log)
        var report = Report(model: rig?.summary ?? "", backend: rig.map { "\($0.backend)" } ?? "", threads: rig?.threads ?? 0,
                            size: size, memoryMethod: "")
        if !json {
            print("stream batch scaling at \(size)², \(report.mode); memory: \(memory)")
            print(pad("steps", 6) + pad("F", 4, right: true) + pad("rows", 6, right: true) + pad("ms/call", 11, right: true)
                  + pad("frames/s", 10, right: true) + pad("latency ms", 12, right: true) + pad("peak RSS MiB", 14, right: true)
                  + pad("added MiB", 11, right: true))
        }
        for s in stepList {
            for f in frameList {
                let row: Row
                if let rig {
                    row = try measureHere(rig, steps: s, frames: f, resetPeak: inProcess || PeakMemory.reset())
                } else {
                    let child = try measureInSubprocess(steps: s, frames: f)
                    (report.model, report.backend, report.threads) = (child.model, child.backend, child.threads)
                    guard let first = child.rows.first else { throw ValidationError("the subprocess for \(s)×\(f) returned no row") }
                    row = first
                }
                report.rows.append(row)
                if !json {
                    print(pad("\(s)", 6) + pad("\(f)", 4, right: true) + pad("\(row.rows)", 6, right: true)
                          + pad(format(row.msPerCall, 1), 11, right: true) + pad(format(row.framesPerSecond, 2), 10, right: true)
                          + pad(format(row.latencyMs, 1), 12, right: true) + pad(format(row.peakRSSMiB, 0), 14, right: true)
                          + pad(row.rssBeforeMiB.map { format(row.peakRSSMiB - $0, 0) } ?? "", 11, right: true))
                }
            }
        }
        let reset = report.rows.allSatisfy { $0.rssBeforeMiB != nil }
        report.memoryMethod = inProcess ? "in-process: VmHWM reset through /proc/self/clear_refs before each configuration"
            : (reset ? "subprocess: one process per configuration, VmHWM reset through /proc/self/clear_refs after the model loaded"
                     : "subprocess: one process per configuration, whole-process peak (getrusage) including the model load")
        if json { return try printJSON(report) }
        print("model: \(report.model), on \(report.backend); memory: \(report.memoryMethod)")
    }

    /// Times one configuration in this process. With `resetPeak`, the buffer pool and the heap are
    /// handed back and the high-water mark reset first; without (where the reset failed), the peak
    /// is the whole process's.
    func measureHere(_ rig: StreamBenchRig, steps: Int, frames: Int, resetPeak: Bool) throws -> Row {
        var before: Int?
        if resetPeak {
            try rig.releaseIdleMemory()
            PeakMemory.trimHeap()
            guard PeakMemory.reset(), let status = PeakMemory.status() else {
                throw ValidationError("cannot reset the peak-memory mark through /proc/self/clear_refs")
            }
            before = status.current
        }
        let indices = StreamBenchRig.indices(steps, img2img: true)
        let ms = try msPerCall(rig, indices: indices, frames: frames)
        let peak = resetPeak ? (PeakMemory.status()?.peak ?? 0) : PeakMemory.processPeak()
        let mib = { (bytes: Int) in Double(bytes) / 1_048_576 }
        return Row(steps: steps, frameBufferSize: frames, rows: steps * frames, tIndexList: indices, msPerCall: ms,
                   framesPerSecond: 1000 * Double(frames) / ms, latencyMs: Double(steps) * ms, peakRSSMiB: mib(peak),
                   rssBeforeMiB: before.map(mib))
    }

    /// Median ms of one call with F frames once the stream is full (S calls fill it).
    func msPerCall(_ rig: StreamBenchRig, indices: [Int], frames: Int) throws -> Double {
        var p = StreamParameters()
        (p.width, p.height, p.tIndexList, p.cfgType, p.guidanceScale, p.frameBufferSize) = (size, size, indices, .none, 1, frames)
        let stream = try rig.stream(p)
        let batch = try OpBenchmark.random(rig.backend, [frames, size, size, 3])
        for _ in indices { _ = try stream.img2img(batch) }
        return OpBenchmark.median(try rig.time(warmup: 0, repeats: rig.repeats) { _ = try stream.img2img(batch) })
    }

    /// Runs this binary on one configuration (`--memory child`) and reads its report.
    func measureInSubprocess(steps: Int, frames: Int) throws -> Report {
        guard let binary = Bundle.main.executableURL else { throw ValidationError("cannot find this executable to run a configuration in a subprocess") }
        var arguments = ["bench", "scaling", "--steps", "\(steps)", "--frame-buffer-sizes", "\(frames)", "--size", "\(size)",
                         "--memory", "child", "--json", "--repeats", "\(models.repeats)", "--layouts", models.layouts,
                         "--tokenizer", models.tokenizer, "--cache", models.cache]
        if let model = models.model { arguments += ["--model", model] }
        arguments += models.compute.arguments
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        // stderr goes to a file, so a chatty child can never block on a full pipe we are not reading.
        let errorsURL = FileManager.default.temporaryDirectory.appendingPathComponent("scaling-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errorsURL.path, contents: nil),
              let errors = try? FileHandle(forWritingTo: errorsURL) else { throw ValidationError("cannot create \(errorsURL.path)") }
        defer { try? errors.close(); try? FileManager.default.removeItem(at: errorsURL) }
        let output = Pipe()
        (process.standardOutput, process.standardError) = (output, errors)
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let message = (try? String(contentsOf: errorsURL, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0, let report = try? JSONDecoder().decode(Report.self, from: data) else {
            throw ValidationError("the subprocess for \(steps) step(s) × \(frames) frame(s) failed (status \(process.terminationStatus)): "
                                  + message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return report
    }
}
