/** The smallest ES module: what bench/cold-start-measure.ts compares `import "vmlet"` with. */
export const oneLine = 1;
