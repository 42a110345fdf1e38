// CLIPA's compute accounting: a configuration small enough to count by hand, and the CLIPA towers
// at the resolutions and text lengths of the spec's table (§A5.5), which the papers' figures use.

import CLIP
import Layers
import Testing

@Suite("Compute accounting (multiply–accumulates)")
struct ComputeAccountingTests {
    @Test("A one-layer tower counted by hand")
    func handCounted() {
        // 8 px, patch 4: 4 patches + class = 5 tokens of width 4, MLP ratio 4.
        // Layer: q, k, v, out 4·5·16 = 320; MLP 2·4·5·16 = 640; scores and mix 2·25·4 = 200.
        // Patch embedding: 4 patches × 48 inputs × 4 outputs = 768.
        let v = VisionConfiguration(imageSize: 8, patchSize: 4, width: 4, layers: 1, heads: 1)
        #expect(ComputeAccounting.imageMACs(v) == 320 + 640 + 200 + 768)
        // Two kept patches: 3 tokens. 4·3·16 + 8·3·16 + 2·9·4 = 192 + 384 + 72; embedding 2·48·4 = 384.
        #expect(ComputeAccounting.imageMACs(v, keptPatches: 2) == 192 + 384 + 72 + 384)
        // Text: 3 tokens, width 4, 2 layers, MLP ratio 2: per layer (4 + 4)·3·16 + 2·9·4 = 384 + 72.
        let t = TextConfiguration(contextLength: 3, vocabularySize: 10, width: 4, layers: 2, heads: 1, mlpRatio: 2)
        #expect(ComputeAccounting.textMACs(t) == 2 * (384 + 72))
    }

    @Test("CLIPA's towers give the spec's GMACs per sample")
    func clipaTowers() {
        func vit(_ width: Int, _ layers: Int, patch: Int = 16) -> VisionConfiguration {
            VisionConfiguration(imageSize: 224, patchSize: patch, width: width, layers: layers, heads: 1)
        }
        func g(_ x: Double) -> Double { (x / 1e9 * 100).rounded() / 100 }
        let b16 = vit(768, 12), l16 = vit(1024, 24), s16 = vit(384, 12), h14 = vit(1280, 32, patch: 14)
        #expect(g(ComputeAccounting.imageMACs(b16)) == 17.56)
        #expect(g(ComputeAccounting.imageMACs(b16, imageSize: 112)) == 4.32)
        #expect(g(ComputeAccounting.imageMACs(b16, imageSize: 64)) == 1.46)
        #expect(g(ComputeAccounting.imageMACs(l16)) == 61.55)
        #expect(g(ComputeAccounting.imageMACs(l16, imageSize: 96)) == 11.27)
        #expect(g(ComputeAccounting.imageMACs(s16, imageSize: 160)) == 2.27)
        #expect(abs(ComputeAccounting.imageMACs(h14) / 1e9 - 167.3) < 0.05)
        let textB = TextConfiguration(contextLength: 32, vocabularySize: 10, width: 512, layers: 12, heads: 8)
        #expect(g(ComputeAccounting.textMACs(textB)) == 1.22)
        #expect(g(ComputeAccounting.textMACs(textB, length: 16)) == 0.61)
        let textH = TextConfiguration(contextLength: 32, vocabularySize: 10, width: 1024, layers: 24, heads: 16)
        #expect(g(ComputeAccounting.textMACs(textH)) == 9.71)
    }

    @Test("The CLIPA ladder: 8×8 grids, depth = width / 32, text narrower, compute growing with size")
    func ladder() throws {
        var previous = 0.0
        for name in ["clipa-s", "clipa-m", "clipa-l"] {
            let c = try #require(CLIPConfiguration.preset(name))
            try c.validate()
            #expect(c.vision.grid == 8 && c.vision.imageSize == 64 && c.vision.patchSize == 8)
            #expect(c.vision.layers == c.vision.width / 32 && c.text.layers == c.vision.layers)
            #expect(c.text.width < c.vision.width)
            let macs = ComputeAccounting.imageMACs(c.vision) + ComputeAccounting.textMACs(c.text)
            #expect(macs > 2 * previous, "\(name): \(macs)")
            previous = macs
        }
    }

    @Test("Mixture layers counted by hand: the router plus k experts' MLPs per token, nothing for capacity padding")
    func mixtureHandCounted() {
        // Text tower: 2 layers of width 8 on 5 tokens, MLP ratio 4; block 1 holds 4 experts, top-2, cf 2.
        var t = TextConfiguration(contextLength: 5, vocabularySize: 10, width: 8, layers: 2, heads: 2)
        let dense = ComputeAccounting.textMACs(t)
        // Per layer: q, k, v, out 4·5·64 = 1,280; MLP 2·4·5·64 = 2,560; scores and mix 2·25·8 = 400.
        #expect(dense == 2 * 4240)
        t.experts = MoEPlacement(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 2))
        // Block 1: attention as before, two experts' MLPs per token (5,120), the router 5·8·4 = 160.
        let layer: Double = 1280 + 2560 + 400, topTwo: Double = 1280 + 2 * 2560 + 400 + 160, topOne: Double = 1280 + 2560 + 400 + 160
        #expect(ComputeAccounting.textMACs(t) == layer + topTwo)
        // Capacity factor 1 keeps at most one assignment per token on average.
        t.experts = MoEPlacement(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1))
        #expect(ComputeAccounting.textMACs(t) == layer + topOne)
    }
}
