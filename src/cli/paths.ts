import packageRoot from "../package-root.cjs";

export { packageRoot };
export { shippedGuestPath as guestPath } from "../guests.js";
