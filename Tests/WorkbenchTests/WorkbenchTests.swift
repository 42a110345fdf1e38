import Data
import Foundation
import Testing
import Workbench

@Suite("Workbench: studies, tables and figures")
struct WorkbenchTests {
    let study = Study(
        name: "demo", title: "Demo", mirrors: "FastCLIP §9.1",
        base: ["model": "nano", "epochs": 5, "objective.rho": 6.5],
        factors: [
            Factor("algorithm", [Level("v1", ["objective.preset": "fastclip-v1"]), Level("SogCLR", ["objective.preset": "sogclr"])]),
            .over("batchSize", [128, 256]),
        ],
        presets: [
            .smoke: PresetScale(seeds: 1, ["epochs": 1, "data": "shapes:512"]),
            .quick: PresetScale(seeds: 2, ["data": "shapes:cc3m-mini"]),
            .paper: PresetScale(seeds: 3, ["epochs": 30]),
        ])

    @Test("Expansion: factors × seeds, first factor slowest, settings layered base < preset < level < seed")
    func expansion() {
        let runs = study.expand(preset: .quick, codeVersion: "abc")
        #expect(runs.count == 2 * 2 * 2)
        #expect(runs.map(\.variant) == ["v1 / 128", "v1 / 128", "v1 / 256", "v1 / 256", "SogCLR / 128", "SogCLR / 128", "SogCLR / 256", "SogCLR / 256"])
        #expect(runs.map(\.seed) == [0, 1, 0, 1, 0, 1, 0, 1])
        let r = runs[5]
        #expect(r.settings["objective.preset"] == "sogclr" && r.settings["batchSize"] == 128 && r.settings["seed"] == 1)
        #expect(r.settings["data"] == "shapes:cc3m-mini" && r.settings["epochs"] == 5 && r.settings["model"] == "nano")
        #expect(study.expand(preset: .smoke, codeVersion: "abc")[0].settings["epochs"] == 1)
        #expect(study.expand(preset: .paper, seeds: 5, codeVersion: "abc").count == 20)
        #expect(study.variants == ["v1 / 128", "v1 / 256", "SogCLR / 128", "SogCLR / 256"])
    }

    @Test("Run ids: equal settings and code give equal ids; any change gives another")
    func runIDs() {
        let a = study.expand(preset: .quick, codeVersion: "abc"), b = study.expand(preset: .quick, codeVersion: "abc")
        #expect(a.map(\.id) == b.map(\.id))
        #expect(Set(a.map(\.id)).count == a.count)
        #expect(study.expand(preset: .quick, codeVersion: "abd")[0].id != a[0].id)
        var s = a[0].settings
        s["objective.rho"] = 6.5000001
        #expect(s.runID(codeVersion: "abc") != a[0].id)
        // The id does not depend on the order settings were assigned in.
        let x = Settings(["a": 1, "b.c": "x"]), y = Settings(["b.c": "x", "a": 1])
        #expect(x.canonicalJSON == "{\"a\":1,\"b.c\":\"x\"}" && x.runID(codeVersion: "v") == y.runID(codeVersion: "v"))
        #expect(x.runID(codeVersion: "v").count == 16)
    }

    @Test("Overrides (study --precision) reach every run after the levels and give every run another id")
    func overrides() {
        var overridden = study
        overridden.overrides = Settings(["precision": "bf16-emulated", "batchSize": 64])
        let plain = study.expand(preset: .quick, codeVersion: "abc"), runs = overridden.expand(preset: .quick, codeVersion: "abc")
        #expect(runs.count == plain.count && runs.map(\.variant) == plain.map(\.variant))
        #expect(runs.allSatisfy { $0.settings["precision"] == "bf16-emulated" && $0.settings["batchSize"] == 64 })
        #expect(plain.allSatisfy { $0.settings["precision"] == nil })
        #expect(Set(runs.map(\.id)).isDisjoint(with: plain.map(\.id)))
    }

    @Test("CSV: quoting and numbers read back exactly")
    func csvExact() throws {
        let values: [Double] = [0.1, 1.0 / 3.0, 1e-300, 123456789.125, -0.0, 3, .nan]
        let text = CSV.render(
            columns: ["variant", "value"],
            rows: values.enumerated().map { [.text(["plain", "with, comma", "with \"quote\"", "line\nbreak", " edge", "ü", "x"][$0.offset]), .number($0.element)] })
        let back = try CSV.parse(text)
        #expect(back.columns == ["variant", "value"])
        #expect(back.rows.map { $0[0] } == ["plain", "with, comma", "with \"quote\"", "line\nbreak", " edge", "ü", "x"])
        for (v, row) in zip(values, back.rows) {
            let got = try #require(CSV.number(row[1]))
            #expect(v.isNaN ? got.isNaN : got == v && got.sign == v.sign || (v == 0 && got == 0), "\(v) → \(row[1])")
        }
        #expect(text.hasPrefix("variant,value\nplain,0.1\n\"with, comma\",0.3333333333333333\n"))
        #expect(throws: WorkbenchError.self) { try CSV.parse("a,b\n1\n") }
        #expect(throws: WorkbenchError.self) { try CSV.parse("a,b\n\"open,1\n") }
    }

    @Test("Aggregation: mean and sample standard deviation per group, NaN ignored")
    func aggregation() {
        let rows: [[String: Double]] = [["g": 1, "m": 1], ["g": 1, "m": 3], ["g": 2, "m": 5], ["g": 2, "m": .nan]]
        let out = aggregate(rows, by: { "\($0["g"]!)" }, metrics: ["m"])
        #expect(out.map(\.group) == ["1.0", "2.0"])
        #expect(out[0].summaries["m"]! == Summary([1, 3]) && out[0].summaries["m"]!.mean == 2)
        #expect(abs(out[0].summaries["m"]!.standardDeviation - 2.0.squareRoot()) < 1e-15)
        #expect(out[1].summaries["m"]!.count == 1 && out[1].summaries["m"]!.standardDeviation == 0)
        #expect(Summary([]).mean.isNaN)
    }

    static let figure = Figure(
        name: "eval-mean", csv: "summary.csv", title: "Held-out mean \"eval_mean\"", xLabel: "epoch", yLabel: "eval_mean",
        series: [
            Series(title: "v1", filterColumn: "variant", filterValue: "v1", x: "epoch", y: "eval_mean_mean", error: "eval_mean_sd"),
            Series(title: "SogCLR", filterColumn: "variant", filterValue: "SogCLR", x: "epoch", y: "eval_mean_mean"),
        ],
        extra: ["set yrange [0:1]"])

    @Test("The generated gnuplot script, as text")
    func goldenScript() {
        let expected = """
            # eval-mean.gp: generated by the ClipLab workbench; draws summary.csv.
            # Run `gnuplot eval-mean.gp` in this directory to redraw.
            set datafile separator ","
            set datafile columnheaders
            set datafile missing "nan"
            set title "Held-out mean \\"eval_mean\\"" noenhanced
            set xlabel "epoch" noenhanced
            set ylabel "eval_mean" noenhanced
            set key outside right top noenhanced
            set grid
            set yrange [0:1]
            set terminal pngcairo size 960,600 font ",11"
            set output "eval-mean.png"
            plot "summary.csv" using (strcol("variant") eq "v1" ? column("epoch") : NaN):(column("eval_mean_mean")):(column("eval_mean_sd")) with yerrorlines title "v1", \\
                 "summary.csv" using (strcol("variant") eq "SogCLR" ? column("epoch") : NaN):(column("eval_mean_mean")) with linespoints title "SogCLR"
            set terminal svg size 960,600 font ",11" background "white"
            set output "eval-mean.svg"
            replot
            set terminal pdfcairo size 6.4in,4in font ",10"
            set output "eval-mean.pdf"
            replot
            unset output

            """
        #expect(Gnuplot.script(Self.figure) == expected)
    }

    @Test("gnuplot renders the script to a PNG that decodes, an SVG and a PDF")
    func render() throws {
        let dir = NSTemporaryDirectory() + "workbench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var rows: [[Cell]] = []
        for (variant, base) in [("v1", 0.3), ("SogCLR", 0.2)] {
            for epoch in 0...4 { rows.append([.text(variant), .number(Double(epoch)), .number(base + 0.1 * Double(epoch)), .number(0.02)]) }
        }
        try CSV.render(columns: ["variant", "epoch", "eval_mean_mean", "eval_mean_sd"], rows: rows)
            .write(toFile: dir + "/summary.csv", atomically: true, encoding: .utf8)
        try Gnuplot.script(Self.figure).write(toFile: dir + "/eval-mean.gp", atomically: true, encoding: .utf8)
        try Gnuplot.render(scriptFile: "eval-mean.gp", in: dir)
        let png = try ImageDecoder.decode(path: dir + "/eval-mean.png")
        #expect(png.width == 960 && png.height == 600)
        let svg = try String(contentsOfFile: dir + "/eval-mean.svg", encoding: .utf8)
        #expect(svg.contains("<svg") && svg.contains("SogCLR"))
        let pdf = try Data(contentsOf: URL(fileURLWithPath: dir + "/eval-mean.pdf"))
        #expect(pdf.starts(with: Array("%PDF".utf8)) && pdf.count > 1000)
        // A broken script is an error carrying gnuplot's message.
        try "plot \"nothing.csv\" using 1:2\n".write(toFile: dir + "/bad.gp", atomically: true, encoding: .utf8)
        do { try Gnuplot.render(scriptFile: "bad.gp", in: dir); Issue.record("a broken script rendered") } catch {
            #expect("\(error)".contains("bad.gp") && "\(error)".contains("nothing.csv"))
        }
    }
}
