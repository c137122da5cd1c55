/** The SDK's own words on screen (message text comes from the campaign). Pass translations
 * through `init({labels})`. */
export interface Labels {
  close: string;
  previousSlide: string;
  nextSlide: string;
  /** "{n} of {total}" for carousel slides. */
  slideOf: string;
  submit: string;
  answerRequired: string;
  /** "Step {n}" for tour steps. */
  step: string;
  /** "{n} of {max}" read out for a rating choice. */
  ratingOf: string;
}

export const DEFAULT_LABELS: Labels = {
  close: "Close",
  previousSlide: "Previous slide",
  nextSlide: "Next slide",
  slideOf: "{n} of {total}",
  submit: "Submit",
  answerRequired: "Please answer at least one question.",
  step: "Step {n}",
  ratingOf: "{n} of {max}",
};

export function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole));
}
