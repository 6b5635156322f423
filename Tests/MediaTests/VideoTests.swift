import Foundation
import Testing
@testable import Media
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// VideoInfo / VideoReader / VideoWriter against the real ffmpeg (installed by `make setup`).
/// Every test makes its own clip: ffmpeg's `testsrc` pattern, 64x48 at 10 fps, 12 frames, H.264
/// yuv420p, in a temporary folder.
@Suite(.enabled(if: VideoTools.isAvailable,
                "ffmpeg/ffprobe not on PATH: install ffmpeg (`make setup`, or apt-get install ffmpeg)"))
struct VideoTests {
    let folder: TemporaryFolder

    init() throws { folder = try TemporaryFolder() }

    /// The 12-frame 64x48 10 fps test clip, as `name` (its extension picks the container).
    private func makeClip(_ name: String = "clip.mp4") throws -> URL {
        let url = folder.file(name)
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "12", "-pix_fmt", "yuv420p",
                    url.path])
        return url
    }

    private func ffmpeg(_ arguments: [String]) throws {
        let tool = try #require(FFmpegTools.locate("ffmpeg"))
        let result = try ChildProcess.capture(executable: tool, arguments: ["-v", "error", "-nostdin", "-y"] + arguments)
        #expect(result.status == .exited(0), "ffmpeg failed: \(result.errors)")
    }

    /// True once `pid` is gone (reaped: not even a zombie).
    private func isGone(_ pid: pid_t) -> Bool { kill(pid, 0) == -1 && errno == ESRCH }

    // MARK: Probe

    @Test func probeReportsSizeRateCountAndCodec() throws {
        let info = try VideoInfo.probe(url: try makeClip())
        #expect(info.width == 64 && info.height == 48)
        #expect(info.frameRate == FrameRate(numerator: 10, denominator: 1))
        #expect(info.frameRate?.value == 10)
        #expect(info.frameCount == 12)
        #expect(info.codec == "h264")
    }

    // MARK: Reading

    @Test func readsEveryFrame() throws {
        let reader = try VideoReader(url: try makeClip())
        let frames = try reader.readAllFrames()
        #expect(frames.count == 12)
        #expect(reader.framesRead == 12)
        #expect(frames.allSatisfy { $0.width == 64 && $0.height == 48 && $0.pixels.count == 64 * 48 * 3 })
        #expect(frames[0] != frames[11], "testsrc moves from frame to frame")
        #expect(try reader.nextFrame() == nil)  // stays at end
        #expect(reader.processID == nil)        // ffmpeg exited and was reaped
    }

    /// 320x240 frames (230400 bytes) are bigger than a pipe's buffer, so each takes several reads.
    @Test(arguments: [(320, 240), (32, 24), (17, 9)])
    func readsScaledFrames(_ width: Int, _ height: Int) throws {
        let reader = try VideoReader(url: try makeClip(), size: (width, height))
        #expect(reader.width == width && reader.height == height)
        let frames = try reader.readAllFrames()
        #expect(frames.count == 12)
        #expect(frames.allSatisfy { $0.width == width && $0.height == height })
    }

    @Test func closeStopsFFmpegAndReapsIt() throws {
        // Long enough that ffmpeg is still running (blocked on the pipe) after the first frame.
        let clip = folder.file("long.mp4")
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-frames:v", "250", "-pix_fmt", "yuv420p",
                    "-preset", "ultrafast", clip.path])
        let reader = try VideoReader(url: clip)
        #expect(try reader.nextFrame() != nil)
        let pid = try #require(reader.processID)
        #expect(!isGone(pid))
        reader.close()
        #expect(isGone(pid))
        #expect(try reader.nextFrame() == nil)

        // Releasing a reader mid-stream does the same.
        var second: VideoReader? = try VideoReader(url: clip)
        #expect(try second?.nextFrame() != nil)
        let secondPID = try #require(second?.processID)
        second = nil
        #expect(isGone(secondPID))
    }

    // MARK: Writing

    /// Read the clip, write it back at the same rate, read that: same count, size and rate, and
    /// frames within `tolerance` mean absolute difference per byte (lossy codecs). Measured with
    /// ffmpeg 5.1 (Debian 12), worst frame: 2.35 (H.264 CRF 18) and 2.46 (VP9 CRF 24) on this tiny
    /// clip, whose sharp colour edges suffer from a second rgb -> yuv420p -> rgb trip. The bound
    /// leaves room for other encoder versions; a dropped, duplicated or shifted frame gives 20+.
    @Test(arguments: [("mp4", 4.0), ("mov", 4.0), ("mkv", 4.0), ("webm", 4.0)])
    func roundTripKeepsEveryFrame(_ ext: String, _ tolerance: Double) throws {
        let source = try VideoReader(url: try makeClip())
        let frames = try source.readAllFrames()
        let rate = try #require(source.info.frameRate)

        let out = folder.file("out.\(ext)")
        let writer = try VideoWriter(url: out, width: 64, height: 48, frameRate: (rate.numerator, rate.denominator))
        for frame in frames { try writer.write(frame) }
        try writer.finish()
        #expect(writer.framesWritten == 12)
        #expect(writer.processID == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted() == ["clip.mp4", "out.\(ext)"],
                "no partial file left behind")

        let info = try VideoInfo.probe(url: out)
        #expect(info.width == 64 && info.height == 48)
        #expect(info.frameRate == 10)
        #expect(info.codec == (ext == "webm" ? "vp9" : "h264"))
        if ext != "mkv" && ext != "webm" { #expect(info.frameCount == 12) }  // Matroska declares no count

        let back = try VideoReader(url: out).readAllFrames()
        #expect(back.count == frames.count)
        var worst = 0.0
        for (a, b) in zip(frames, back) {
            worst = max(worst, difference(a, b).mean)
        }
        #expect(worst < tolerance, "worst frame mean abs difference \(worst)")
    }

    @Test func writerRefusesWrongSizesAndStaysUsable() throws {
        let out = folder.file("sizes.mp4")
        let writer = try VideoWriter(url: out, width: 64, height: 48, frameRate: 10)
        let error = mediaError { try writer.write(try RGBImage(width: 48, height: 64)) }
        #expect(error?.description.contains("48x64") == true)
        #expect(error?.description.contains(out.path) == true)
        try writer.write(try RGBImage(width: 64, height: 48, red: 200))
        try writer.finish()
        #expect(try VideoReader(url: out).readAllFrames().count == 1)
        #expect(throws: MediaError.self) { try writer.write(try RGBImage(width: 64, height: 48)) }
    }

    @Test func writerRefusesBadSettings() throws {
        func initError(_ name: String, _ width: Int, _ height: Int, _ rate: FrameRate = 10) -> MediaError? {
            mediaError { _ = try VideoWriter(url: folder.file(name), width: width, height: height, frameRate: rate) }
        }
        // yuv420p needs even sizes: refused, never padded or cropped.
        #expect(initError("odd.mp4", 63, 48)?.description.contains("even") == true)
        #expect(initError("odd.mp4", 64, 47)?.description.contains("even") == true)
        #expect(initError("zero.mp4", 0, 48) != nil)
        #expect(initError("rate.mp4", 64, 48, FrameRate(numerator: 0, denominator: 1)) != nil)
        #expect(initError("rate.mp4", 64, 48, FrameRate(numerator: 10, denominator: 0)) != nil)
        if case .unsupported(let file, _)? = initError("clip.avi", 64, 48) {
            #expect(file.hasSuffix("clip.avi"))
        } else {
            Issue.record("unknown extension not refused as unsupported")
        }
        if case .cannotWrite(let file, _)? = mediaError({
            _ = try VideoWriter(url: folder.file("missing/out.mp4"), width: 64, height: 48, frameRate: 10)
        }) {
            #expect(file.hasSuffix("missing/out.mp4"))
        } else {
            Issue.record("missing folder not refused")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).isEmpty)
    }

    @Test func abandonedWritersLeaveNothingBehind() throws {
        let frame = try RGBImage(width: 64, height: 48, green: 255)
        // No frames: finish refuses (ffmpeg would write an empty video).
        let empty = try VideoWriter(url: folder.file("empty.mp4"), width: 64, height: 48, frameRate: 10)
        let error = mediaError { try empty.finish() }
        #expect(error?.description.contains("no frames") == true)

        let cancelled = try VideoWriter(url: folder.file("cancelled.mp4"), width: 64, height: 48, frameRate: 10)
        try cancelled.write(frame)
        let pid = try #require(cancelled.processID)
        cancelled.cancel()
        #expect(isGone(pid))
        #expect(throws: MediaError.self) { try cancelled.finish() }

        var released: VideoWriter? = try VideoWriter(url: folder.file("released.mp4"), width: 64, height: 48,
                                                     frameRate: 10)
        try released?.write(frame)
        let releasedPID = try #require(released?.processID)
        released = nil
        #expect(isGone(releasedPID))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).isEmpty)
    }

    /// ffmpeg failing under the writer (its output folder vanished) is a `.cannotWrite` naming the
    /// file. 30 frames (270 KiB) overflow the pipe, so a write meets the dead ffmpeg (EPIPE, which
    /// must not raise SIGPIPE here).
    @Test func writerReportsFFmpegFailure() throws {
        let sub = folder.file("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let out = sub.appendingPathComponent("out.mp4")
        let writer = try VideoWriter(url: out, width: 64, height: 48, frameRate: 10)
        try FileManager.default.removeItem(at: sub)
        let error = mediaError {
            for _ in 0..<30 { try writer.write(try RGBImage(width: 64, height: 48)) }
            try writer.finish()
        }
        guard case .cannotWrite(let file, let reason)? = error else {
            Issue.record("expected cannotWrite, got \(String(describing: error))")
            return
        }
        #expect(file == out.path)
        #expect(reason.contains("No such file or directory"), "ffmpeg's message is quoted: \(reason)")
    }

    // MARK: Bad input

    @Test func nonVideoFileIsAnErrorNamingIt() throws {
        let fake = folder.file("fake.mp4")
        try Data("this is text, not a video\n".utf8).write(to: fake)
        for error in [mediaError { _ = try VideoInfo.probe(url: fake) }, mediaError { _ = try VideoReader(url: fake) }] {
            guard case .cannotRead(let file, let reason)? = error else {
                Issue.record("expected cannotRead, got \(String(describing: error))")
                continue
            }
            #expect(file == fake.path)
            #expect(reason.contains("Invalid data found"), "ffprobe's message is quoted: \(reason)")
        }
    }

    @Test func truncatedVideoQuotesFFprobe() throws {
        let clip = try makeClip()
        let data = try Data(contentsOf: clip)
        let cut = folder.file("cut.mp4")
        try data.prefix(data.count / 2).write(to: cut)  // mp4's index (moov) is at the end
        let error = mediaError { _ = try VideoReader(url: cut) }
        #expect(error?.description.contains(cut.path) == true)
        #expect(error?.description.contains("moov atom not found") == true, "\(String(describing: error))")
    }

    @Test func audioOnlyFileHasNoVideoStream() throws {
        let audio = folder.file("tone.wav")
        try ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=0.1", audio.path])
        let error = mediaError { _ = try VideoReader(url: audio) }
        #expect(error == .unsupported(file: audio.path, reason: "no video stream"))
    }

    @Test func missingFileIsAnErrorNamingIt() throws {
        let missing = folder.file("nope.mp4")
        #expect(mediaError { _ = try VideoInfo.probe(url: missing) } == .cannotRead(file: missing.path, reason: "no such file"))
        #expect(mediaError { _ = try VideoReader(url: missing) } == .cannotRead(file: missing.path, reason: "no such file"))
        let error = mediaError { _ = try VideoReader(url: folder.url) }
        #expect(error?.description.contains(folder.url.path) == true)
    }
}

/// The parts that need no ffmpeg: ffprobe JSON parsing, frame rates, locating tools.
@Suite struct VideoInfoParsingTests {
    @Test func probeParsesOddAndMissingFields() throws {
        let json = #"{"streams": [{"width": 1920, "height": "1080", "r_frame_rate": "60000/2002", "#
            + #""avg_frame_rate": "0/0", "nb_frames": "N/A"}]}"#
        let info = try VideoInfo.parse(json: Data(json.utf8), file: "x")
        #expect(info.width == 1920 && info.height == 1080)
        #expect(info.frameRate == FrameRate(numerator: 30000, denominator: 1001))
        #expect(abs((info.frameRate?.value ?? 0) - 29.97003) < 1e-5)
        #expect(info.frameCount == nil && info.codec == nil)

        let noRate = try VideoInfo.parse(json: Data(#"{"streams":[{"width":2,"height":2,"r_frame_rate":"x"}]}"#.utf8), file: "x")
        #expect(noRate.frameRate == nil)
        for bad in [#"{"streams": []}"#, #"{}"#, #"{"streams":[{"width":0,"height":2}]}"#,
                    #"{"streams":[{"height":2}]}"#, "not json", "[1]"] {
            let error = mediaError { _ = try VideoInfo.parse(json: Data(bad.utf8), file: "named.mp4") }
            #expect(error?.description.contains("named.mp4") == true, "\(bad): \(String(describing: error))")
        }
        #expect(FrameRate(numerator: 50, denominator: 2) == 25)
        #expect(FrameRate(ffprobe: "25") == 25 && FrameRate(ffprobe: "0/0") == nil && FrameRate(ffprobe: "-1/2") == nil)
    }

    @Test func missingToolMessage() throws {
        #expect(VideoTools.notFoundMessage("ffmpeg")
            == "ffmpeg not found on PATH; install it with `apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS)")
        #expect(FFmpegTools.locate("ffmpeg", searchPath: "/nonexistent:/also/not") == nil)
        let error = mediaError {
            _ = try FFmpegTools.require("ffprobe", searchPath: "/nonexistent") { MediaError.cannotRead(file: "in.mp4", reason: $0) }
        }
        #expect(error == .cannotRead(file: "in.mp4", reason: VideoTools.notFoundMessage("ffprobe")))
        #expect(error?.description == "cannot read in.mp4: " + VideoTools.notFoundMessage("ffprobe"))
    }

    /// PATH is searched folder by folder (an empty entry is the current folder); nothing is hard-coded.
    @Test func locatesToolsOnPath() throws {
        let folder = try TemporaryFolder()
        let fake = folder.file("ffmpeg")
        try Data("#!/bin/sh\n".utf8).write(to: fake)
        #expect(FFmpegTools.locate("ffmpeg", searchPath: "/nonexistent:\(folder.url.path)") == nil, "not executable")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        #expect(FFmpegTools.locate("ffmpeg", searchPath: "/nonexistent::\(folder.url.path)") == fake.path)
        try FileManager.default.createDirectory(at: folder.file("sub/ffmpeg"), withIntermediateDirectories: true)
        #expect(FFmpegTools.locate("ffmpeg", searchPath: folder.file("sub").path) == nil, "a folder is not a tool")
    }
}

/// The MediaError `body` throws (recording an issue if it throws nothing or something else).
fileprivate func mediaError(_ body: () throws -> Void) -> MediaError? {
    do {
        try body()
        Issue.record("no error thrown")
    } catch let error as MediaError {
        return error
    } catch {
        Issue.record("not a MediaError: \(error)")
    }
    return nil
}
