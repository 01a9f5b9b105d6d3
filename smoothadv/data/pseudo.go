package data

// OpenPseudoLabelled opens the pseudo-labelled extra set used for self-training: a pickled dict
// with uint8 images under "data", N x 32 x 32 x 3 in HWC order as Carmon et al. publish it
// (ti_500K_pseudo_labeled.pickle), and CIFAR-10 labels under "extrapolated_targets". Like the
// reference, it always gets the CIFAR-10 training augmentation.
func OpenPseudoLabelled(path string) (Dataset, error) {
	d, err := loadPseudoLabelled(path)
	if err != nil {
		return nil, err
	}
	d.pad = cropPad
	return d, nil
}

func loadPseudoLabelled(path string) (*memDataset, error) {
	d := &memDataset{shape: Shape{3, 32, 32}, classes: 10}
	return d, d.addFiles([]string{path}, readPseudoLabelled)
}

func readPseudoLabelled(path string) ([]byte, []int, error) {
	pix, labels, err := readPickledImages(path, "extrapolated_targets", -1, 32, 32, 3)
	if err != nil {
		return nil, nil, err
	}
	hwcToCHW(pix, 32*32, 3)
	return pix, labels, nil
}

// hwcToCHW reorders, in place, images of hw pixels of c channels from interleaved to planar.
func hwcToCHW(pix []byte, hw, c int) {
	tmp := make([]byte, hw*c)
	for off := 0; off+len(tmp) <= len(pix); off += len(tmp) {
		img := pix[off : off+len(tmp)]
		for p := range hw {
			for ch := range c {
				tmp[ch*hw+p] = img[p*c+ch]
			}
		}
		copy(img, tmp)
	}
}
